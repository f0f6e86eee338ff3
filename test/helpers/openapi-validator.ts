import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Json } from './jobs.ts';

// ajv-formats is CommonJS: under ESM its function is the default export's `default`.
type AddFormats = (ajv: Ajv2020) => unknown;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ??
  addFormatsModule) as unknown as AddFormats;

export interface Answer {
  status: number;
  headers: Record<string, unknown>;
  text: string;
}

const escapePointer = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Checks answers against an OpenAPI 3.1 document: the status is one the operation lists,
 * the media type one that status lists, the body valid against its schema (each line of
 * JSON lines), and the headers the response lists present. Returns the problems, [] when none.
 */
export function makeAnswerChecker(document: Json) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addFormat('binary', true);
  ajv.addSchema({ ...document, $id: 'https://cutout.test/openapi.json' });
  const operations = new Map<string, { path: string; method: string; operation: Json }>();
  for (const [path, item] of Object.entries(document.paths as Record<string, Json>)) {
    for (const [method, operation] of Object.entries(item))
      operations.set(operation.operationId, { path, method, operation });
  }

  return function check(operationId: string, answer: Answer): string[] {
    const found = operations.get(operationId);
    if (!found) return [`${operationId} is not in the document`];
    const response = found.operation.responses[String(answer.status)] as Json | undefined;
    if (!response)
      return [
        `${operationId} answered ${answer.status}, which it does not document (${Object.keys(found.operation.responses).join(', ')})`,
      ];
    const problems: string[] = [];
    for (const header of Object.keys(response.headers ?? {})) {
      if (header.startsWith('x-ratelimit') && answer.status === 401) continue;
      // Documented headers a given answer may leave out: set only when they apply.
      if (
        ['preference-applied', 'idempotent-replayed', 'retry-after', 'location'].includes(header) &&
        answer.headers[header] === undefined
      )
        continue;
      if (answer.headers[header] === undefined)
        problems.push(`${operationId} ${answer.status}: header ${header} is missing`);
    }
    const content = response.content as Json | undefined;
    if (!content) {
      if (answer.text !== '') problems.push(`${operationId} ${answer.status}: a body where the document says none`);
      return problems;
    }
    const mediaType = String(answer.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    if (!content[mediaType])
      return [
        ...problems,
        `${operationId} ${answer.status}: media type ${mediaType || '(none)'} is not documented (${Object.keys(content).join(', ')})`,
      ];
    const pointer = [
      'paths',
      found.path,
      found.method,
      'responses',
      String(answer.status),
      'content',
      mediaType,
      'schema',
    ]
      .map(escapePointer)
      .join('/');
    const validate = ajv.getSchema(`https://cutout.test/openapi.json#/${pointer}`);
    if (!validate) return [...problems, `${operationId}: no schema at ${pointer}`];
    const bodies =
      mediaType === 'application/x-ndjson'
        ? answer.text
            .split('\n')
            .filter(Boolean)
            .map((line) => JSON.parse(line) as unknown)
        : [mediaType === 'application/json' ? (JSON.parse(answer.text) as unknown) : answer.text];
    for (const body of bodies) {
      if (!validate(body))
        problems.push(`${operationId} ${answer.status}: ${ajv.errorsText(validate.errors, { dataVar: 'body' })}`);
    }
    return problems;
  };
}
