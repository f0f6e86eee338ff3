import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/** ByByBG's error envelope. */
interface ErrorBody {
  error: { message: string };
}

function errorBody(message: string): ErrorBody {
  return { error: { message } };
}

/** A request the client must fix; `statusCode` is what fastify's error handler answers. */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.statusCode = statusCode;
  }
}

export function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send(errorBody(message));
}

/**
 * 4xx errors (ours, fastify's, @fastify/multipart's 413s) keep their status and message;
 * anything else is a 500 that does not leak internals.
 */
export function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return sendError(reply, status, error.message);
  request.log.error({ err: error }, 'request failed');
  return sendError(reply, 500, 'internal error');
}
