import type { FastifyInstance, FastifySchemaCompiler, onRequestAsyncHookHandler } from 'fastify';
import type { FastifySerializerCompiler } from 'fastify/types/schema.js';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { z } from 'zod';
import { validatorCompiler } from 'fastify-type-provider-zod';
import type { Scope } from '@cutout/shared/stores';
import { ApiError } from '../http/api-error.ts';
import { buildDocument } from './document.ts';
import { errorsByStatus, type OperationSpec, type SuccessResponse } from './operation.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's contract: what it validates, answers and documents. */
    operation?: OperationSpec;
  }
}

/** An answer that does not match the document: a schema mismatch, or an error code the operation does not declare. */
export interface ContractViolation {
  operationId: string;
  status: number;
  problem: string;
}

export type Guards = Record<Scope, onRequestAsyncHookHandler>;

const TAGS = [
  { name: 'jobs', description: 'One image each: submit, poll, list, cancel, fetch the result' },
  { name: 'batches', description: 'Many images at once, their counts and results manifest' },
  { name: 'uploads', description: 'Files PUT straight to S3, then made a batch' },
  { name: 'review', description: 'Review links, verdicts and reruns' },
  { name: 'webhooks', description: 'Deliveries of job and batch events' },
  { name: 'account', description: 'The tenant, its limits, usage and webhook signing secret' },
  { name: 'operations', description: 'Health, readiness and metrics' },
];

type JsonResponses<S extends OperationSpec> = {
  [K in keyof S['responses'] as S['responses'][K] extends { json: z.ZodType } ? K : never]: S['responses'][K] extends {
    json: infer T;
  }
    ? T
    : never;
};

const jsonResponses = <S extends OperationSpec>(spec: S) =>
  Object.fromEntries(
    Object.entries(spec.responses as Record<number, SuccessResponse>).flatMap(([status, response]) =>
      response.json ? [[status, response.json]] : [],
    ),
  ) as JsonResponses<S>;

/**
 * A route's fastify options from its operation: the schemas fastify validates the request
 * with and serializes JSON answers from, the guard of its scope (authentication runs in
 * `onRequest`, before the body is read), and the operation itself for the document.
 */
export function routeOf<const S extends OperationSpec>(spec: S, guards: Guards) {
  const mediaTypes = mediaTypesOf(spec);
  // A body the handler also takes in other media types (multipart) is validated only when it is JSON.
  const body = spec.requestBody && spec.body ? { content: { 'application/json': { schema: spec.body } } } : spec.body;
  const schema = Object.fromEntries(
    Object.entries({
      params: spec.params,
      querystring: spec.querystring,
      headers: spec.headers,
      body,
      response: jsonResponses(spec),
    }).filter(([, value]) => value !== undefined),
  );
  return {
    method: spec.method,
    url: spec.url,
    schema: schema as {
      params: S['params'];
      querystring: S['querystring'];
      headers: S['headers'];
      body: S['body'];
      response: JsonResponses<S>;
    },
    config: { operation: spec },
    // Who is calling first, then whether the body is of a type the operation takes: both before any byte of it is read.
    onRequest: [
      ...(spec.scope ? [guards[spec.scope]] : []),
      ...(mediaTypes.length ? [refuseOtherMediaTypes(mediaTypes)] : []),
    ],
  };
}

/** The body media types an operation takes: JSON for a validated body, and whatever else it documents. */
const mediaTypesOf = (spec: OperationSpec): string[] => [
  ...(spec.body ? ['application/json'] : []),
  ...Object.keys(spec.requestBody?.content ?? {}),
];

/** 415 for a body of another type; a request without a body is left to the body schema (optional or not). */
function refuseOtherMediaTypes(mediaTypes: readonly string[]): onRequestAsyncHookHandler {
  const listed = mediaTypes.join(' or ');
  return async (request) => {
    const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (type === undefined) return;
    if (!mediaTypes.includes(type)) throw new ApiError('unsupported_media_type', `Send the body as ${listed}`);
  };
}

/**
 * JSON answers are checked against the operation's schema as they are serialized; a
 * mismatch is reported (tests fail on it) and the answer still goes out, so a client never
 * gets a 500 for a field the document forgot.
 */
const makeSerializerCompiler =
  (report: (violation: ContractViolation) => void): FastifySerializerCompiler<z.ZodType> =>
  ({ schema, method, url }) =>
  (data) => {
    const encoded = z.safeEncode(schema, data);
    if (encoded.success) return JSON.stringify(encoded.data);
    report({ operationId: `${method} ${url}`, status: 200, problem: z.prettifyError(encoded.error) });
    return JSON.stringify(data);
  };

export interface ContractOptions {
  publicBaseUrl: string;
  version: string;
  report: (violation: ContractViolation) => void;
}

/**
 * Sets the zod validator and serializer, collects every route's operation (a `/v1` route
 * without one stops the app from starting), and serves the document they make at
 * `/openapi.json` and `/docs`.
 */
export async function registerContract(
  app: FastifyInstance,
  { publicBaseUrl, version, report }: ContractOptions,
): Promise<readonly OperationSpec[]> {
  app.setValidatorCompiler(validatorCompiler as FastifySchemaCompiler<z.ZodType>);
  app.setSerializerCompiler(makeSerializerCompiler(report));
  const operations: OperationSpec[] = [];
  app.addHook('onRoute', (route) => {
    if (route.method === 'HEAD') return;
    const operation = route.config?.operation;
    if (operation) operations.push(operation);
    else if (route.url.startsWith('/v1/'))
      throw new Error(`${String(route.method)} ${route.url} has no operation: every /v1 route declares its contract`);
  });
  const document: Record<string, unknown> = {};
  app.addHook('onReady', async () => {
    Object.assign(document, buildDocument(operations, { publicBaseUrl, version, tags: TAGS }));
  });
  await app.register(swagger, { mode: 'static', specification: { document: document as never } });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=60').send(document),
  );
  return operations;
}

/** Reports an error answer whose code the operation does not declare for its status. */
export function checkErrorCode(
  operation: OperationSpec | undefined,
  status: number,
  code: string,
  report: (violation: ContractViolation) => void,
): void {
  if (!operation) return;
  const declared = errorsByStatus(operation).get(status) ?? [];
  if (!(declared as string[]).includes(code))
    report({
      operationId: operation.operationId,
      status,
      problem: `error code ${code} is not documented for status ${status}`,
    });
}
