/**
 * `npm run keys -- …`: create, list and revoke API keys, and set tenants' budgets of upstream
 * calls. It talks to Redis directly, with the
 * API's REDIS_URL and REDIS_PREFIX, so it works whether or not an API process is running.
 * Exit codes: 0 done, 1 failed (Redis, unknown key), 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { configOrExit, connectChecked, createRedis } from '@cutout/shared/infra';
import {
  ALL_SCOPES,
  makeBudgets,
  type BudgetLimits,
  type BudgetPeriod,
  type Budgets,
  type Scope,
} from '@cutout/shared/stores';
import {
  API_KEY_ID_PATTERN,
  TENANT_ID_PATTERN,
  isWellFormedApiKey,
  makeApiKeyStore,
  type ApiKeyStore,
  type StoredApiKey,
} from './auth/api-keys.ts';

const USAGE = `Usage:
  npm run keys -- create --tenant <tenant> [--scope jobs:read] [--scope jobs:write] [--name <label>] [--json]
  npm run keys -- list [--tenant <tenant>] [--json]
  npm run keys -- revoke <key_id>
  npm run keys -- budget --tenant <tenant> [--daily-upstream-calls N] [--monthly-upstream-calls N] [--clear] [--json]

  create   issues a key and prints it once; Cutout keeps only its SHA-256 hash
  list     shows id, tenant, scopes, dates and the start of each key, never the key
  revoke   refuses the key from now on (401 revoked_api_key); also takes the key itself
  budget   shows the tenant's budget of ByByBG calls per UTC day and month; with a number, sets
           that period (the other stays), with --clear removes both. Takes effect at once:
           jobs over it wait (waiting_reason budget_exhausted) and resume when it allows again

Scopes: ${ALL_SCOPES.join(', ')} (default: both). Tenant ids: 1-64 of A-Z a-z 0-9 _ -.
Reads REDIS_URL and REDIS_PREFIX like the API.`;

type Command =
  | { action: 'create'; tenantId: string; scopes: Scope[]; name?: string; json: boolean }
  | { action: 'list'; tenantId?: string; json: boolean }
  | { action: 'revoke'; idOrKey: string; json: boolean }
  | { action: 'budget'; tenantId: string; set: Partial<BudgetLimits>; clear: boolean; json: boolean }
  | { action: 'help' };

class UsageError extends Error {}

const readArgs = (argv: string[]) =>
  parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      scope: { type: 'string', multiple: true },
      name: { type: 'string' },
      'daily-upstream-calls': { type: 'string' },
      'monthly-upstream-calls': { type: 'string' },
      clear: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });

function parseCommand(argv: string[]): Command {
  let parsed: ReturnType<typeof readArgs>;
  try {
    parsed = readArgs(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [action, ...rest] = positionals;
  if (values.help || action === 'help') return { action: 'help' };
  const json = values.json;
  const refuse = (
    ...options: ('tenant' | 'scope' | 'name' | 'daily-upstream-calls' | 'monthly-upstream-calls' | 'clear')[]
  ) => {
    for (const option of options)
      if (values[option] !== undefined && values[option] !== false)
        throw new UsageError(`${action} takes no --${option}`);
  };
  const tenant = (required: boolean) => {
    if (values.tenant === undefined && !required) return undefined;
    if (values.tenant === undefined) throw new UsageError(`${action} needs --tenant <tenant>`);
    if (!TENANT_ID_PATTERN.test(values.tenant))
      throw new UsageError(`--tenant "${values.tenant}" is not 1-64 of A-Z a-z 0-9 _ -`);
    return values.tenant;
  };
  switch (action) {
    case 'create': {
      refuse('daily-upstream-calls', 'monthly-upstream-calls', 'clear');
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      const name = values.name?.trim();
      if (name !== undefined && (name.length === 0 || name.length > 100 || /\p{Cc}/u.test(name)))
        throw new UsageError('--name must be 1 to 100 characters, without control characters');
      return { action, tenantId: tenant(true)!, scopes: parseScopes(values.scope), ...(name ? { name } : {}), json };
    }
    case 'list':
      refuse('scope', 'name', 'daily-upstream-calls', 'monthly-upstream-calls', 'clear');
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      return { action, tenantId: tenant(false), json };
    case 'revoke': {
      refuse('tenant', 'scope', 'name', 'daily-upstream-calls', 'monthly-upstream-calls', 'clear');
      if (rest.length !== 1) throw new UsageError('revoke needs exactly one key id (key_…)');
      const idOrKey = rest[0]!;
      if (!API_KEY_ID_PATTERN.test(idOrKey) && !isWellFormedApiKey(idOrKey))
        throw new UsageError('revoke needs a key id: key_ and 16 letters or digits');
      return { action, idOrKey, json };
    }
    case 'budget': {
      refuse('scope', 'name');
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      const set: Partial<BudgetLimits> = {};
      if (values['daily-upstream-calls'] !== undefined)
        set.daily = callCount('--daily-upstream-calls', values['daily-upstream-calls']);
      if (values['monthly-upstream-calls'] !== undefined)
        set.monthly = callCount('--monthly-upstream-calls', values['monthly-upstream-calls']);
      if (values.clear && Object.keys(set).length > 0)
        throw new UsageError('--clear removes the budget; it takes no number');
      return { action, tenantId: tenant(true)!, set, clear: values.clear, json };
    }
    case undefined:
      throw new UsageError('a command is needed: create, list, revoke or budget');
    default:
      throw new UsageError(`unknown command "${action}"`);
  }
}

/** A budget: a whole number of upstream calls, 0 (nothing may run) or more. */
function callCount(option: string, text: string): number {
  if (!/^\d{1,12}$/.test(text))
    throw new UsageError(`${option} must be a whole number of upstream calls (0 or more), not "${text}"`);
  return Number(text);
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
  id: record.id,
  tenant_id: record.tenantId,
  scopes: record.scopes,
  name: record.name ?? null,
  prefix: record.prefix,
  created_at: record.createdAt,
  revoked_at: record.revokedAt ?? null,
});

const periodJson = (period: BudgetPeriod | null) =>
  period ? { limit: period.limit, used: period.used, resets_at: period.resetsAt } : null;

function periodLine(name: string, period: BudgetPeriod | null): string {
  if (!period) return `${name}none`;
  return `${name}${period.limit} upstream calls (${period.used} used; resets ${period.resetsAt})`;
}

function table(records: StoredApiKey[]): string {
  const rows = [
    ['ID', 'TENANT', 'SCOPES', 'CREATED', 'REVOKED', 'KEY', 'NAME'],
    ...records.map((r) => [
      r.id || '(none)',
      r.tenantId,
      r.scopes.join(','),
      r.createdAt,
      r.revokedAt ?? '-',
      r.prefix ? `${r.prefix}…` : '-',
      r.name ?? '',
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function run(
  command: Exclude<Command, { action: 'help' }>,
  store: ApiKeyStore,
  budgets: Budgets,
): Promise<number> {
  const print = (text: string) => process.stdout.write(`${text}\n`);
  switch (command.action) {
    case 'create': {
      const { key, record } = await store.create(command);
      if (command.json) print(JSON.stringify({ ...toJson(record), key }));
      else
        print(
          [
            `id:      ${record.id}`,
            `tenant:  ${record.tenantId}`,
            `scopes:  ${record.scopes.join(', ')}`,
            ...(record.name ? [`name:    ${record.name}`] : []),
            `key:     ${key}`,
          ].join('\n'),
        );
      process.stderr.write('Store the key now: it is not shown again (Cutout keeps only its SHA-256 hash).\n');
      return 0;
    }
    case 'list': {
      const records = await store.list(command.tenantId);
      if (command.json) print(JSON.stringify(records.map(toJson)));
      else
        print(
          records.length > 0
            ? table(records)
            : `No API keys${command.tenantId ? ` for tenant ${command.tenantId}` : ''}.`,
        );
      return 0;
    }
    case 'revoke': {
      const record = await store.revoke(command.idOrKey);
      if (!record) {
        process.stderr.write(
          `No API key ${API_KEY_ID_PATTERN.test(command.idOrKey) ? command.idOrKey : 'matches the key given'}.\n`,
        );
        return 1;
      }
      if (command.json) print(JSON.stringify(toJson(record)));
      else
        print(
          `Revoked ${record.id || `the key ${record.prefix}…`} of tenant ${record.tenantId} (revoked on ${record.revokedAt}).`,
        );
      return 0;
    }
    case 'budget': {
      if (command.clear) await budgets.clear(command.tenantId);
      else if (Object.keys(command.set).length > 0) await budgets.setLimits(command.tenantId, command.set);
      const state = await budgets.state(command.tenantId);
      if (command.json)
        print(
          JSON.stringify({
            tenant_id: command.tenantId,
            daily: periodJson(state.daily),
            monthly: periodJson(state.monthly),
          }),
        );
      else
        print(
          [
            `tenant:   ${command.tenantId}`,
            periodLine('daily:    ', state.daily),
            periodLine('monthly:  ', state.monthly),
          ].join('\n'),
        );
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
  process.exitCode = await run(
    command,
    makeApiKeyStore({ redis, prefix: config.redis.prefix }),
    makeBudgets({ redis, prefix: config.redis.prefix }),
  );
} catch (error) {
  // Messages name the Redis URL without its password, and never a key.
  process.stderr.write(`keys: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  redis.disconnect();
}
