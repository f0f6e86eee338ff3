/**
 * `npm run keys -- …`: create, list and revoke API keys. It talks to Redis directly, with the
 * API's REDIS_URL and REDIS_PREFIX, so it works whether or not an API process is running.
 * Exit codes: 0 done, 1 failed (Redis, unknown key), 2 bad usage.
 */
import { parseArgs } from 'node:util';
import {
  ALL_SCOPES, API_KEY_ID_PATTERN, TENANT_ID_PATTERN, configOrExit, connectChecked, createRedis, isWellFormedApiKey, makeApiKeyStore,
  type ApiKeyStore, type Scope, type StoredApiKey,
} from '@cutout/shared';

const USAGE = `Usage:
  npm run keys -- create --tenant <tenant> [--scope jobs:read] [--scope jobs:write] [--name <label>] [--json]
  npm run keys -- list [--tenant <tenant>] [--json]
  npm run keys -- revoke <key_id>

  create   issues a key and prints it once; Cutout keeps only its SHA-256 hash
  list     shows id, tenant, scopes, dates and the start of each key, never the key
  revoke   refuses the key from now on (401 revoked_api_key); also takes the key itself

Scopes: ${ALL_SCOPES.join(', ')} (default: both). Tenant ids: 1-64 of A-Z a-z 0-9 _ -.
Reads REDIS_URL and REDIS_PREFIX like the API.`;

type Command =
  | { action: 'create'; tenantId: string; scopes: Scope[]; name?: string; json: boolean }
  | { action: 'list'; tenantId?: string; json: boolean }
  | { action: 'revoke'; idOrKey: string; json: boolean }
  | { action: 'help' };

class UsageError extends Error {}

function parseCommand(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        tenant: { type: 'string' }, scope: { type: 'string', multiple: true }, name: { type: 'string' },
        json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [action, ...rest] = positionals;
  if (values.help || action === 'help') return { action: 'help' };
  const json = values.json;
  const refuse = (...options: ('tenant' | 'scope' | 'name')[]) => {
    for (const option of options) if (values[option] !== undefined) throw new UsageError(`${action} takes no --${option}`);
  };
  const tenant = (required: boolean) => {
    if (values.tenant === undefined && !required) return undefined;
    if (values.tenant === undefined) throw new UsageError(`${action} needs --tenant <tenant>`);
    if (!TENANT_ID_PATTERN.test(values.tenant)) throw new UsageError(`--tenant "${values.tenant}" is not 1-64 of A-Z a-z 0-9 _ -`);
    return values.tenant;
  };
  switch (action) {
    case 'create': {
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      const name = values.name?.trim();
      if (name !== undefined && (name.length === 0 || name.length > 100 || /\p{Cc}/u.test(name))) throw new UsageError('--name must be 1 to 100 characters, without control characters');
      return { action, tenantId: tenant(true)!, scopes: parseScopes(values.scope), ...(name ? { name } : {}), json };
    }
    case 'list':
      refuse('scope', 'name');
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      return { action, tenantId: tenant(false), json };
    case 'revoke': {
      refuse('tenant', 'scope', 'name');
      if (rest.length !== 1) throw new UsageError('revoke needs exactly one key id (key_…)');
      const idOrKey = rest[0]!;
      if (!API_KEY_ID_PATTERN.test(idOrKey) && !isWellFormedApiKey(idOrKey)) throw new UsageError('revoke needs a key id: key_ and 16 letters or digits');
      return { action, idOrKey, json };
    }
    case undefined:
      throw new UsageError('a command is needed: create, list or revoke');
    default:
      throw new UsageError(`unknown command "${action}"`);
  }
}

/** Accepts `--scope a --scope b` and `--scope a,b`; none means every scope. */
function parseScopes(values: string[] | undefined): Scope[] {
  if (!values) return [...ALL_SCOPES];
  const scopes = values.flatMap((value) => value.split(',')).map((scope) => scope.trim());
  const unknown = scopes.find((scope) => !(ALL_SCOPES as readonly string[]).includes(scope));
  if (unknown !== undefined) throw new UsageError(`unknown scope "${unknown}"; scopes are ${ALL_SCOPES.join(', ')}`);
  return ALL_SCOPES.filter((scope) => scopes.includes(scope));
}

/** The same snake_case field names as the HTTP API. */
const toJson = (record: StoredApiKey) => ({
  id: record.id, tenant_id: record.tenantId, scopes: record.scopes, name: record.name ?? null, prefix: record.prefix,
  created_at: record.createdAt, revoked_at: record.revokedAt ?? null,
});

function table(records: StoredApiKey[]): string {
  const rows = [
    ['ID', 'TENANT', 'SCOPES', 'CREATED', 'REVOKED', 'KEY', 'NAME'],
    ...records.map((r) => [r.id || '(none)', r.tenantId, r.scopes.join(','), r.createdAt, r.revokedAt ?? '-', r.prefix ? `${r.prefix}…` : '-', r.name ?? '']),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

async function run(command: Exclude<Command, { action: 'help' }>, store: ApiKeyStore): Promise<number> {
  const print = (text: string) => process.stdout.write(`${text}\n`);
  switch (command.action) {
    case 'create': {
      const { key, record } = await store.create(command);
      if (command.json) print(JSON.stringify({ ...toJson(record), key }));
      else print([`id:      ${record.id}`, `tenant:  ${record.tenantId}`, `scopes:  ${record.scopes.join(', ')}`,
        ...(record.name ? [`name:    ${record.name}`] : []), `key:     ${key}`].join('\n'));
      process.stderr.write('Store the key now: it is not shown again (Cutout keeps only its SHA-256 hash).\n');
      return 0;
    }
    case 'list': {
      const records = await store.list(command.tenantId);
      if (command.json) print(JSON.stringify(records.map(toJson)));
      else print(records.length > 0 ? table(records) : `No API keys${command.tenantId ? ` for tenant ${command.tenantId}` : ''}.`);
      return 0;
    }
    case 'revoke': {
      const record = await store.revoke(command.idOrKey);
      if (!record) {
        process.stderr.write(`No API key ${API_KEY_ID_PATTERN.test(command.idOrKey) ? command.idOrKey : 'matches the key given'}.\n`);
        return 1;
      }
      if (command.json) print(JSON.stringify(toJson(record)));
      else print(`Revoked ${record.id || `the key ${record.prefix}…`} of tenant ${record.tenantId} (revoked on ${record.revokedAt}).`);
      return 0;
    }
  }
}

let command: Command;
try {
  command = parseCommand(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`keys: ${error.message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (command.action === 'help') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const config = configOrExit(process.env);
const redis = createRedis(config.redis.url, { connectionName: 'cutout-keys' });
try {
  await connectChecked(redis, config.redis.url);
  process.exitCode = await run(command, makeApiKeyStore({ redis, prefix: config.redis.prefix }));
} catch (error) {
  // Messages name the Redis URL without its password, and never a key.
  process.stderr.write(`keys: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  redis.disconnect();
}
