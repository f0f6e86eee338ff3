import type { TestS3 } from '../../test/helpers/services.ts';

export interface S3CallCount {
  total: number;
  byCall: Record<string, number>;
}

/** `PUT results` for `PUT /<bucket>/results/t/j.png?x-id=PutObject`; multipart steps keep their query's name. */
function label(method: string, path: string, bucket: string): string {
  const [pathname = '', query = ''] = path.split('?');
  const parts = pathname.split('/').filter(Boolean);
  const kind = parts[0] === bucket ? (parts[1] ?? '(bucket)') : (parts[0] ?? '(root)');
  const step = ['uploads', 'uploadId', 'partNumber'].find((name) => new URLSearchParams(query).has(name));
  return `${method} ${kind}${step ? ` ?${step}` : ''}`;
}

/** Counts the requests the in-process S3 server answers while `task` runs; null with an external S3. */
export async function countS3Calls<T>(
  s3: TestS3,
  task: () => Promise<T>,
): Promise<{ result: T; count: S3CallCount | null }> {
  if (!s3.observe) return { result: await task(), count: null };
  const count: S3CallCount = { total: 0, byCall: {} };
  const stop = s3.observe((method, path) => {
    const name = label(method, path, s3.bucket);
    count.total += 1;
    count.byCall[name] = (count.byCall[name] ?? 0) + 1;
  });
  try {
    return { result: await task(), count };
  } finally {
    stop();
  }
}

export function s3PerUnit(count: S3CallCount, per: number): S3CallCount {
  const round = (value: number) => Math.round((value / per) * 100) / 100;
  return {
    total: round(count.total),
    byCall: Object.fromEntries(
      Object.entries(count.byCall)
        .sort(([, a], [, b]) => b - a)
        .map(([name, n]) => [name, round(n)]),
    ),
  };
}
