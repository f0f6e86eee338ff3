import { describe, expect, it } from 'vitest';
import { parseEmulatorEnv } from './config.ts';

describe('parseEmulatorEnv', () => {
  it('uses the documented defaults for an empty environment', () => {
    expect(parseEmulatorEnv({})).toEqual({
      ok: true,
      config: {
        port: 4010,
        host: '127.0.0.1',
        keys: ['emulator-dev-key'],
        logLevel: 'info',
        faults: { rateLimit: { perSecond: 10, burst: 10 } },
        maxUploadBytes: 50 * 1024 * 1024,
      },
    });
  });

  it('reads every fault variable', () => {
    const result = parseEmulatorEnv({
      EMULATOR_API_KEYS: ' a-key , b-key ,',
      EMULATOR_RATE_LIMIT: '0',
      EMULATOR_LATENCY_MS: '25',
      EMULATOR_LATENCY_JITTER_MS: '5',
      EMULATOR_ERROR_RATE: '0.1',
      EMULATOR_HANG_RATE: '0.01',
      EMULATOR_TRUNCATE_RATE: '0.02',
      EMULATOR_RESPONSE_MODE: 'json-url',
      EMULATOR_FIXED_RESULT: 'true',
      EMULATOR_TOLERANCE: '40',
      EMULATOR_FORBIDDEN_KEYS: 'b-key',
      LOG_LEVEL: 'warn',
    });
    expect(result.ok && result.config).toMatchObject({
      keys: ['a-key', 'b-key'],
      logLevel: 'warn',
      faults: {
        rateLimit: null,
        latencyMs: 25,
        latencyJitterMs: 5,
        errorRate: 0.1,
        hangRate: 0.01,
        truncateRate: 0.02,
        responseMode: 'json-url',
        fixedResult: true,
        tolerance: 40,
        forbiddenKeys: ['b-key'],
      },
    });
  });

  it('defaults the burst to the rate, and takes an explicit one', () => {
    expect(parseEmulatorEnv({ EMULATOR_RATE_LIMIT: '2.5' })).toMatchObject({
      config: { faults: { rateLimit: { perSecond: 2.5, burst: 3 } } },
    });
    expect(parseEmulatorEnv({ EMULATOR_RATE_LIMIT: '5', EMULATOR_BURST: '20' })).toMatchObject({
      config: { faults: { rateLimit: { perSecond: 5, burst: 20 } } },
    });
  });

  it('lists every bad variable in one message', () => {
    const result = parseEmulatorEnv({
      EMULATOR_PORT: 'eighty',
      EMULATOR_ERROR_RATE: '1.5',
      EMULATOR_RESPONSE_MODE: 'xml',
      EMULATOR_FIXED_RESULT: 'maybe',
      LOG_LEVEL: 'loud',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    for (const name of [
      'EMULATOR_PORT',
      'EMULATOR_ERROR_RATE',
      'EMULATOR_RESPONSE_MODE',
      'EMULATOR_FIXED_RESULT',
      'LOG_LEVEL',
    ]) {
      expect(result.message).toContain(name);
    }
  });

  it('refuses an empty key list', () => {
    expect(parseEmulatorEnv({ EMULATOR_API_KEYS: ' , ' }).ok).toBe(false);
  });
});
