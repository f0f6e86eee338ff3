import { makeFaultSettings, type FaultPatch, type FaultSettings, type RateLimit } from './faults.ts';
import { makeTokenBucket, type TakeResult, type TokenBucket } from './token-bucket.ts';

/**
 * The emulator's run-time settings: valid keys, fault settings and the token bucket built
 * from them. One instance per app (no module-level state), changed by the admin endpoints.
 */
export interface EmulatorState {
  faults(): FaultSettings;
  /** Applies a validated partial update; a changed rate limit starts every key with a full bucket. */
  updateFaults(patch: FaultPatch): FaultSettings;
  isValidKey(key: string): boolean;
  setKeys(keys: readonly string[]): void;
  keyCount(): number;
  /** null when rate limiting is off. */
  takeToken(key: string): { limit: RateLimit; result: TakeResult } | null;
  /** Uses one credit; false when the account has none left (the call is answered 402). */
  takeCredit(): boolean;
  /** Gives back the credit of a call that did not produce a result. */
  refundCredit(): void;
}

export interface EmulatorStateOptions {
  keys: readonly string[];
  faults?: FaultPatch;
  now?: () => number;
}

export function makeEmulatorState({ keys, faults, now = Date.now }: EmulatorStateOptions): EmulatorState {
  let settings = makeFaultSettings(faults);
  let validKeys = new Set(keys);
  let bucket: TokenBucket | null = settings.rateLimit ? makeTokenBucket(settings.rateLimit, now) : null;

  function updateFaults(patch: FaultPatch): FaultSettings {
    const next = makeFaultSettings({ ...settings, ...patch });
    if (JSON.stringify(next.rateLimit) !== JSON.stringify(settings.rateLimit)) {
      bucket = next.rateLimit ? makeTokenBucket(next.rateLimit, now) : null;
    }
    settings = next;
    return settings;
  }

  function takeToken(key: string): { limit: RateLimit; result: TakeResult } | null {
    return bucket ? { limit: bucket.limit, result: bucket.take(key) } : null;
  }

  function takeCredit(): boolean {
    if (settings.credits === null) return true;
    if (settings.credits === 0) return false;
    settings = { ...settings, credits: settings.credits - 1 };
    return true;
  }

  function refundCredit(): void {
    if (settings.credits !== null) settings = { ...settings, credits: settings.credits + 1 };
  }

  return {
    faults: () => settings,
    updateFaults,
    isValidKey: (key) => validKeys.has(key),
    setKeys: (next) => {
      validKeys = new Set(next);
    },
    keyCount: () => validKeys.size,
    takeToken,
    takeCredit,
    refundCredit,
  };
}
