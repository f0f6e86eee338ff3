import { Tokenizer, TokenParser, TokenType, type ParsedTokenInfo } from '@streamparser/json';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, badRequest } from '../http/errors.ts';

/** An element of the array longer than this cannot be a valid item (see MAX_MANIFEST_ROW_BYTES). */
export const MAX_JSON_ITEM_BYTES = 64 * 1024;

export interface JsonBodyRules {
  /** The top-level array read element by element (`items` of a batch, `files` of an upload). */
  array: string;
  /** Top-level fields besides the array, whose values are kept as parsed. */
  fields: ReadonlySet<string>;
  /** Largest body. */
  maxBytes: number;
  /** Throws for a field value that will be refused anyway, before the items after it are read. */
  checkField?: (name: string, value: unknown) => void;
}

/** What a JSON body held besides its array's elements. */
export interface JsonBody {
  fields: Record<string, unknown>;
  hasArray: boolean;
}

const notJson = (detail: string) => badRequest('invalid_request', `The body is not valid JSON: ${detail}`);

/**
 * Reads a JSON body as it streams in (@streamparser/json): each element of the top-level
 * array (`rules.array`) goes to `onItem` once it is complete and is dropped from the parser's stack,
 * so memory holds one chunk's items whatever the length of the array; the other top-level
 * fields are kept. The next chunk is read only once `onItem` has taken the items of this
 * one. Fields may come in any order; an unknown or repeated one is refused (400).
 */
export async function readJsonBody(
  chunks: AsyncIterable<Buffer>,
  rules: JsonBodyRules,
  onItem: (raw: unknown, index: number) => Promise<void>,
): Promise<JsonBody> {
  const tokenizer = new Tokenizer();
  const parser = new TokenParser({
    paths: [`$.${rules.array}.*`, ...[...rules.fields].map((name) => `$.${name}`)],
    keepStack: false,
  });
  const structure = topLevelStructure(rules.array, rules.fields);
  const ready: { index: number; value: unknown }[] = [];
  const fields: Record<string, unknown> = {};
  let failure: unknown;
  tokenizer.onToken = (token) => {
    if (failure) return;
    try {
      structure.see(token);
      parser.write(token);
    } catch (error) {
      failure = error;
    }
  };
  tokenizer.onError = (error) => (failure ??= notJson(error.message));
  parser.onError = (error) => (failure ??= notJson(error.message));
  parser.onValue = ({ value, key, stack }) => {
    if (stack.length === 2) return void ready.push({ index: Number(key), value });
    fields[String(key)] = value;
    try {
      rules.checkField?.(String(key), value);
    } catch (error) {
      failure ??= error;
    }
  };
  let bytes = 0;
  for await (const chunk of chunks) {
    bytes += chunk.length;
    if (bytes > rules.maxBytes)
      throw new ApiError('payload_too_large', `The JSON body is larger than the limit of ${rules.maxBytes} bytes`);
    if (!tokenizer.isEnded) tokenizer.write(chunk);
    if (failure) throw failure;
    for (const { index, value } of ready.splice(0)) await onItem(value, index);
  }
  if (bytes === 0)
    throw badRequest('invalid_request', `The body is empty; send a JSON object with a "${rules.array}" array`);
  if (!tokenizer.isEnded) tokenizer.end();
  if (failure) throw failure;
  if (!parser.isEnded) throw notJson('it ends before the object does');
  return { fields, hasArray: structure.sawArray() };
}

/**
 * Follows the tokens of the top level: the body must be an object, `array` an array, and
 * every other key one of `fields`, each at most once. Also bounds each element of the array.
 */
function topLevelStructure(array: string, fields: ReadonlySet<string>) {
  let depth = 0;
  let expectKey = false;
  let key: string | undefined;
  let afterColon = false;
  let itemStart = -1;
  let sawArray = false;
  const seen = new Set<string>();
  return {
    sawArray: () => sawArray,
    see({ token, value, offset }: ParsedTokenInfo): void {
      if (depth === 0 && token !== TokenType.LEFT_BRACE)
        throw badRequest('invalid_request', `The JSON body must be an object with a "${array}" array`);
      if (depth === 1 && expectKey && token === TokenType.STRING) {
        key = String(value);
        if (key !== array && !fields.has(key))
          throw badRequest('unknown_field', `Unknown field "${key.slice(0, 100)}"`);
        if (seen.has(key)) throw badRequest('duplicate_field', `Field "${key.slice(0, 100)}" was sent twice`);
        seen.add(key);
        expectKey = false;
        return;
      }
      if (depth === 1 && token === TokenType.COLON) {
        afterColon = true;
        return;
      }
      if (depth === 1 && afterColon) {
        afterColon = false;
        if (key === array) {
          if (token !== TokenType.LEFT_BRACKET) throw badRequest('invalid_request', `"${array}" must be an array`);
          sawArray = true;
        }
      }
      if (
        depth === 2 &&
        key === array &&
        token !== TokenType.COMMA &&
        token !== TokenType.RIGHT_BRACKET &&
        itemStart < 0
      )
        itemStart = offset;
      if (itemStart >= 0 && offset - itemStart > MAX_JSON_ITEM_BYTES) {
        throw new ApiError('payload_too_large', `An element of "${array}" is longer than ${MAX_JSON_ITEM_BYTES} bytes`);
      }
      if (token === TokenType.LEFT_BRACE || token === TokenType.LEFT_BRACKET) depth += 1;
      else if (token === TokenType.RIGHT_BRACE || token === TokenType.RIGHT_BRACKET) depth -= 1;
      if (depth === 1 && (token === TokenType.COMMA || token === TokenType.LEFT_BRACE)) expectKey = true;
      // An element ends at the comma after it, or with the array.
      if ((depth === 2 && key === array && token === TokenType.COMMA) || depth < 2) itemStart = -1;
    },
  };
}

/**
 * A request body as it arrives, for routes that read it themselves (fastify was told not to
 * parse it); a body cut off by the client is its doing (400). It is read through a pipe, so
 * a route that stops reading early can let the rest through (`skipRestOfBody`).
 */
export async function* bodyChunks(request: FastifyRequest): AsyncGenerator<Buffer> {
  const pass = new PassThrough();
  const broken = () => pass.destroy(badRequest('invalid_request', 'The body ended early'));
  request.raw.once('aborted', broken).once('error', broken);
  request.raw.pipe(pass);
  try {
    for await (const chunk of pass) yield chunk as Buffer;
  } catch (error) {
    throw error instanceof ApiError ? error : badRequest('invalid_request', 'The body ended early');
  } finally {
    request.raw.off('aborted', broken).off('error', broken);
  }
}

/**
 * A request refused before its body ended (too many rows, a body over its limit) has the
 * rest of its body let through unparsed and unkept: a client that sends its whole body
 * before reading the answer still gets it, and the connection stays usable.
 */
export function skipRestOfBody(request: FastifyRequest): void {
  if (request.raw.complete) return;
  request.raw.unpipe();
  request.raw.resume();
}

/**
 * In this (encapsulated) context fastify leaves bodies of `types` unread, for routes that
 * stream them (`bodyChunks`); authentication still runs first, in onRequest hooks.
 */
export function leaveBodiesUnread(scope: FastifyInstance, types: string[]): void {
  for (const type of types) if (scope.hasContentTypeParser(type)) scope.removeContentTypeParser(type);
  scope.addContentTypeParser(types, (_request, _payload, done) => done(null, undefined));
}
