/**
 * Which of the configured ByByBG keys may be used. Only indices and states live here, never
 * the keys themselves, so nothing that reads this state can leak a key. The state is per
 * process on purpose: a 401 costs one request to rediscover, which is cheaper than sharing it.
 */

type KeyStateName = 'ok' | 'unauthorized';
export interface KeyState {
  index: number;
  state: KeyStateName;
  since?: string;
}

export interface KeyRing {
  readonly size: number;
  /** The first key not marked unauthorized and not in `skip`. */
  firstUsable(skip: ReadonlySet<number>): number | undefined;
  /** Returns true when the state changed, so the caller logs transitions only. */
  markUnauthorized(index: number): boolean;
  markOk(index: number): boolean;
  states(): KeyState[];
}

export function makeKeyRing(size: number, now: () => number): KeyRing {
  const unauthorizedSince = new Map<number, number>();
  return {
    size,
    firstUsable(skip) {
      for (let index = 0; index < size; index++) {
        if (!unauthorizedSince.has(index) && !skip.has(index)) return index;
      }
      return undefined;
    },
    markUnauthorized(index) {
      if (unauthorizedSince.has(index)) return false;
      unauthorizedSince.set(index, now());
      return true;
    },
    markOk(index) {
      return unauthorizedSince.delete(index);
    },
    states() {
      return Array.from({ length: size }, (_, index): KeyState => {
        const since = unauthorizedSince.get(index);
        return since === undefined
          ? { index, state: 'ok' }
          : { index, state: 'unauthorized', since: new Date(since).toISOString() };
      });
    },
  };
}
