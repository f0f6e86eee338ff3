import { z } from 'zod';
import { ERROR_CODES } from './error-codes.ts';
import { DOCUMENTED_AS } from './fields.ts';
import { errorEnvelope, errorsByStatus, type OperationSpec, type ResponseHeader } from './operation.ts';

type Json = Record<string, unknown>;

const COMPONENT = '#/components/schemas/';

/**
 * Turns zod schemas into the document's JSON Schemas (OpenAPI 3.1 is JSON Schema 2020-12):
 * schemas registered with an id (`.meta({ id })`) become components, referenced by `$ref`.
 */
function makeConverter(components: Json) {
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rewrite);
    if (!value || typeof value !== 'object') return value;
    const out: Json = {};
    for (const [key, child] of Object.entries(value as Json)) {
      if (key === '$schema' || key === '$id') continue;
      if (key === '$ref' && typeof child === 'string' && child.startsWith('#/$defs/'))
        out.$ref = `${COMPONENT}${child.slice('#/$defs/'.length)}`;
      else out[key] = rewrite(child);
    }
    return out;
  };
  const toJson = (schema: z.ZodType, io: 'input' | 'output'): Json =>
    z.toJSONSchema(schema, {
      target: 'draft-2020-12',
      io,
      metadata: z.globalRegistry,
      unrepresentable: 'any',
      reused: 'inline',
      // A field validated by a transform over `unknown` is documented by the schema it stands for.
      override: ({ zodSchema, jsonSchema }) => {
        const documented = DOCUMENTED_AS.get(zodSchema as unknown as z.ZodType);
        if (!documented) return;
        for (const key of Object.keys(jsonSchema)) delete (jsonSchema as Json)[key];
        const { $defs, ...replacement } = toJson(documented, io);
        Object.assign(jsonSchema, replacement);
        Object.assign(extraDefs, $defs ?? {});
      },
    }) as Json;
  const extraDefs: Json = {};
  return (schema: z.ZodType, io: 'input' | 'output'): Json => {
    const converted = toJson(schema, io);
    converted.$defs = { ...extraDefs, ...((converted.$defs as Json | undefined) ?? {}) };
    const defs = (converted.$defs ?? {}) as Json;
    delete converted.$defs;
    for (const [id, def] of Object.entries(defs)) components[id] ??= rewrite(def);
    const id = z.globalRegistry.get(schema)?.id;
    if (id) {
      components[id] ??= rewrite(converted);
      return { $ref: `${COMPONENT}${id}` };
    }
    return rewrite(converted) as Json;
  };
}

const HEADERS: Record<ResponseHeader, Json> = {
  location: { description: 'Where the created (or found) resource is', schema: { type: 'string', format: 'uri' } },
  etag: {
    description: 'Validator of this answer: send it back in If-None-Match to get 304 while nothing changed',
    schema: { type: 'string' },
  },
  'cache-control': { description: 'Caching of this answer', schema: { type: 'string' } },
  'preference-applied': { description: 'Set when Prefer: wait=N was honoured: `wait=N`', schema: { type: 'string' } },
  'idempotent-replayed': {
    description: '`true` when this is the stored answer to an earlier request with the same Idempotency-Key',
    schema: { type: 'string', enum: ['true'] },
  },
  'content-disposition': { description: 'A file name for the download', schema: { type: 'string' } },
  'retry-after': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } },
  'x-ratelimit-limit': {
    description: "Requests per minute the caller's API key may make",
    schema: { type: 'integer' },
  },
  'x-ratelimit-remaining': { description: 'Requests left in the current minute', schema: { type: 'integer' } },
  'x-ratelimit-reset': { description: 'Seconds until the current minute ends', schema: { type: 'integer' } },
};

const RATE_LIMIT_HEADERS: readonly ResponseHeader[] = [
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
];

const headerRefs = (names: readonly ResponseHeader[]): Json | undefined =>
  names.length ? Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }])) : undefined;

/** `:id` → `{id}`. */
const openApiPath = (url: string): string => url.replace(/:(\w+)/g, '{$1}');

function parameters(spec: OperationSpec, convert: ReturnType<typeof makeConverter>): Json[] {
  const from = (schema: z.ZodObject | undefined, location: 'path' | 'query' | 'header') =>
    Object.entries(schema?.shape ?? {}).map(([name, field]) => {
      const json = convert(field as z.ZodType, 'input');
      const { description, ...rest } = json as { description?: string };
      return {
        name,
        in: location,
        required: location === 'path' || !(field as z.ZodType).safeParse(undefined).success,
        ...(description ? { description } : {}),
        schema: rest,
      };
    });
  return [...from(spec.params, 'path'), ...from(spec.querystring, 'query'), ...from(spec.headers, 'header')];
}

function operationObject(spec: OperationSpec, convert: ReturnType<typeof makeConverter>): Json {
  const common = spec.scope ? RATE_LIMIT_HEADERS : [];
  const responses: Json = {};
  for (const [status, response] of Object.entries(spec.responses)) {
    const content: Json = {};
    if (response.json) content['application/json'] = { schema: convert(response.json, 'output') };
    for (const [media, schema] of Object.entries(response.content ?? {}))
      content[media] = { schema: convert(schema, 'output') };
    responses[status] = {
      description: response.description,
      ...(headerRefs([...(response.headers ?? []), ...common])
        ? { headers: headerRefs([...(response.headers ?? []), ...common]) }
        : {}),
      ...(Object.keys(content).length ? { content } : {}),
    };
  }
  for (const [status, codes] of errorsByStatus(spec)) {
    const retry: ResponseHeader[] = status === 429 || status === 503 ? ['retry-after'] : [];
    const limits = spec.scope && status !== 401 && status !== 429 ? common : status === 429 && spec.scope ? common : [];
    responses[String(status)] = {
      description: codes.map((code) => `\`${code}\`: ${ERROR_CODES[code].description}`).join('; '),
      ...(headerRefs([...retry, ...limits]) ? { headers: headerRefs([...retry, ...limits]) } : {}),
      content: { 'application/json': { schema: convert(errorEnvelope(codes), 'output') } },
    };
  }
  const content: Json = {
    ...(spec.body ? { 'application/json': { schema: convert(spec.body, 'input') } } : {}),
    ...Object.fromEntries(
      Object.entries(spec.requestBody?.content ?? {}).map(([media, schema]) => [
        media,
        { schema: convert(schema, 'input') },
      ]),
    ),
  };
  const body = Object.keys(content).length
    ? {
        required: spec.requestBody?.required ?? !spec.body!.safeParse(undefined).success,
        ...(spec.requestBody?.description ? { description: spec.requestBody.description } : {}),
        content,
      }
    : undefined;
  const params = parameters(spec, convert);
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    tags: [...spec.tags],
    security: spec.scope ? [{ apiKey: [] }] : [],
    ...(params.length ? { parameters: params } : {}),
    ...(body ? { requestBody: body } : {}),
    responses,
  };
}

export interface DocumentInfo {
  publicBaseUrl: string;
  version: string;
  tags: { name: string; description: string }[];
}

/** The OpenAPI 3.1 document of `operations`, from the same specs the routes validate and serialize with. */
export function buildDocument(operations: readonly OperationSpec[], info: DocumentInfo): Json {
  const schemas: Json = {};
  const convert = makeConverter(schemas);
  const paths: Record<string, Json> = {};
  for (const spec of [...operations].sort((a, b) => a.url.localeCompare(b.url))) {
    paths[openApiPath(spec.url)] ??= {};
    const path = paths[openApiPath(spec.url)]!;
    path[spec.method.toLowerCase()] = operationObject(spec, convert);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Cutout API',
      version: info.version,
      summary: 'Background removal at catalog scale, in front of ByByBG',
      description:
        'Every /v1 request carries an API key in X-API-KEY. Errors use one envelope: {"error":{"code","message","request_id"}}; each operation lists, per status, the codes it may answer. Lists are {"data": [...], "next_cursor"}.',
      license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
    },
    servers: [{ url: info.publicBaseUrl }],
    tags: info.tags,
    paths,
    components: {
      securitySchemes: {
        apiKey: {
          type: 'apiKey',
          in: 'header',
          name: 'X-API-KEY',
          description: 'An API key (`npm run keys -- create`, or API_KEYS)',
        },
      },
      headers: HEADERS,
      schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}
