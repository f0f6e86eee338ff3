/**
 * A caller's allowance as a script counts it (`COUNT_ALLOWANCE_LUA`), alone or inside another
 * script so that a read and its count are one Redis command (a status poll): its counter's
 * key, the most requests of a window, and the window.
 */
export interface AllowanceTerms {
  key: string;
  max: number;
  windowMs: number;
}

/** What counting one request gave: the count in the window and the window's time left. */
export interface AllowanceCount {
  current: number;
  ttlMs: number;
}

/**
 * Lua: counts one request in a fixed window, as @fastify/rate-limit's Redis store does (INCR;
 * the first of a window sets its expiry). Defines `countAllowance(key, windowMs)`, which
 * returns the count and the window's ms left.
 */
export const COUNT_ALLOWANCE_LUA = `
local function countAllowance(key, windowMs)
  local current = redis.call('INCR', key)
  if current == 1 then
    redis.call('PEXPIRE', key, windowMs)
    return current, tonumber(windowMs)
  end
  return current, redis.call('PTTL', key)
end
`;
