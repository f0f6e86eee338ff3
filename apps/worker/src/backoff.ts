/**
 * Delay before the next webhook attempt: the configured schedule (entry n after the
 * n-th failed attempt) with ±10 % jitter, and never sooner than the receiver's Retry-After.
 */
export function webhookBackoff(scheduleMs: readonly number[], random: () => number = Math.random) {
  return (attemptsMade: number, error?: { retryAfterMs?: number }): number => {
    const base = scheduleMs[Math.min(attemptsMade, scheduleMs.length - 1)] ?? 0;
    const jittered = Math.round(base * (0.9 + random() * 0.2));
    return Math.max(jittered, error?.retryAfterMs ?? 0);
  };
}
