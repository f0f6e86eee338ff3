import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { batchEstimateSchema, batchSchema, errorSchema, jobListSchema, jobSchema, jobSubmissionSchema } from './schemas.ts';
import { ROUTE_DOCS, type Doc } from './routes-doc.ts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

function responseFor(status: number, description: string, key: string, named?: string): Record<string, unknown> {
  if (status >= 400) return { description: `Error codes: ${description}`, content: { 'application/json': { schema: ref('Error') } } };
  if (status === 304 || status === 302) return { description };
  const schema = named ? ref(named) : key === 'GET /v1/jobs' || key === 'GET /v1/batches/:id/jobs' ? ref('JobList') : key.includes('/v1/jobs') ? ref('Job') : key.includes('/v1/batches') ? ref('Batch') : { type: 'object', additionalProperties: true };
  return { description, content: { 'application/json': { schema } } };
}

/** OpenAPI operation built from the route table, for routes the table knows. */
function operation(key: string, doc: Doc) {
  const parameters = [
    ...(doc.params ?? []).map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
    ...Object.entries(doc.query ?? {}).map(([name, description]) => ({ name, in: 'query', required: false, description, schema: { type: 'string' } })),
    ...Object.entries(doc.headers ?? {}).map(([name, description]) => ({ name, in: 'header', required: false, description, schema: { type: 'string' } })),
  ];
  return {
    summary: doc.summary,
    description: doc.description,
    tags: doc.tags,
    parameters,
    ...(doc.body === 'job'
      ? { requestBody: { required: true, content: { 'multipart/form-data': { schema: ref('JobSubmission') }, 'application/json': { schema: ref('JobSubmission') } } } }
      : {}),
    responses: Object.fromEntries(Object.entries(doc.responses).map(([status, description]) => [status, responseFor(Number(status), description, key, doc.schemas?.[Number(status)])])),
  };
}

/** `/openapi.json` and `/docs`, generated from the registered routes and the route table. */
export async function registerOpenApi(app: FastifyInstance, { publicBaseUrl }: { publicBaseUrl: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Cutout API', version: '1.0.0', description: 'Background removal at catalog scale, in front of ByByBG. Errors use one envelope: {"error":{"code","message","request_id"}}.' },
      servers: [{ url: publicBaseUrl }],
      components: {
        securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-KEY' } },
        // Plain JSON Schema objects; the OpenAPI types want literal `type` unions.
        schemas: { Job: jobSchema, JobList: jobListSchema, JobSubmission: jobSubmissionSchema, Batch: batchSchema, BatchEstimate: batchEstimateSchema, Error: errorSchema } as unknown as Record<string, never>,
      },
      security: [{ apiKey: [] }],
    },
    transform: ({ schema, url }) => {
      const hide = url.startsWith('/docs') || url.startsWith('/admin') || url.startsWith('/review') || url === '/openapi.json';
      return { schema: { ...schema, hide: hide || schema?.hide }, url };
    },
    transformObject: (documentObject) => {
      const openapiObject = (documentObject as { openapiObject: { paths?: Record<string, unknown> } }).openapiObject;
      for (const [path, item] of Object.entries(openapiObject.paths ?? {})) {
        for (const method of Object.keys(item as object)) {
          const key = `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`;
          const doc = ROUTE_DOCS[key];
          const target = item as Record<string, unknown>;
          if (doc) target[method] = operation(key, doc);
          else target[method] = { summary: key, tags: [key.split(' ')[1]!.split('/')[2] ?? 'operations'], responses: { 200: { description: 'OK' }, ...((target[method] as { responses?: object })?.responses ?? {}) } };
          if (!key.includes('/v1/')) (target[method] as Record<string, unknown>).security = [];
        }
      }
      return openapiObject as never;
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
