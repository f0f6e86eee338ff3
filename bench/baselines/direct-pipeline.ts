import { randomUUID } from 'node:crypto';
import { FormData, request } from 'undici';
import type { Storage } from '@cutout/shared/infra';
import { newWebhookSecret } from '@cutout/shared/stores';
import { signWebhook } from '../../apps/worker/src/webhook-signing.ts';
import { mapLimit } from '../lib/load.ts';

/**
 * The same I/O per image as Cutout, with no queue, no job records and no API: put the
 * original in S3, call ByByBG, put the result in S3, POST a signed webhook. What a
 * script that holds everything in one process's memory does.
 */
export async function runDirectPipeline({
  storage,
  upstreamUrl,
  upstreamKey,
  webhookUrl,
  photos,
  concurrency,
}: {
  storage: Storage;
  upstreamUrl: string;
  upstreamKey: string;
  webhookUrl: string;
  photos: Buffer[];
  concurrency: number;
}): Promise<void> {
  const secret = newWebhookSecret();
  const run = randomUUID().slice(0, 8);
  await mapLimit(photos.length, concurrency, async (index) => {
    const job = `direct_${run}_${index}`;
    await storage.putBuffer(`originals/direct/${job}`, photos[index]!, 'image/png');
    const form = new FormData();
    form.append('file', new Blob([photos[index]!], { type: 'image/png' }), 'item.png');
    const upstream = await request(`${upstreamUrl}/v1/remove-bg`, {
      method: 'POST',
      body: form,
      headers: { 'x-api-key': upstreamKey },
    });
    const result = Buffer.from(await upstream.body.arrayBuffer());
    if (upstream.statusCode !== 200) throw new Error(`upstream answered ${upstream.statusCode}`);
    await storage.putBuffer(`results/direct/${job}.png`, result, 'image/png');
    const body = JSON.stringify({
      type: 'job.succeeded',
      timestamp: new Date().toISOString(),
      job,
      data: { id: job, status: 'succeeded' },
    });
    const hook = await request(webhookUrl, {
      method: 'POST',
      body,
      headers: { ...signWebhook([secret], `msg_${job}`, new Date(), body), 'content-type': 'application/json' },
    });
    await hook.body.dump();
    if (hook.statusCode >= 300) throw new Error(`webhook answered ${hook.statusCode}`);
  });
}
