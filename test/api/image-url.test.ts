import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { settle, type Json, countJobs } from '../helpers/jobs.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('image_url intake', () => {
  let system: TestSystem;
  let images: Server;
  let base: string;
  let photo: Buffer;
  let motionPhoto: Buffer;

  beforeAll(async () => {
    photo = await productImage('jpeg', PRODUCT_SHOT, 700);
    // A motion photo: the JPEG, then the video the camera appends after EOI (MP4 boxes).
    motionPhoto = Buffer.concat([
      await productImage('jpeg', PRODUCT_SHOT, 701),
      Buffer.from('0000001866747970', 'hex'),
      Buffer.from('mp42isom'),
      Buffer.alloc(8),
      Buffer.alloc(200_000, 0xa5),
    ]);
    images = createServer((req, res) => {
      if (req.url === '/shoe.jpg') return res.writeHead(200, { 'content-type': 'image/jpeg' }).end(photo);
      if (req.url === '/motion.jpg') return res.writeHead(200, { 'content-type': 'image/jpeg' }).end(motionPhoto);
      if (req.url === '/moved') return res.writeHead(302, { location: '/shoe.jpg' }).end();
      if (req.url === '/page.html')
        return res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not an image</html>');
      if (req.url === '/huge.jpg')
        return res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(50_000_000) }).end();
      if (req.url === '/hang.jpg') return; // never answers
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
    system = await startSystem({
      env: { WEBHOOK_ALLOW_PRIVATE: '127.0.0.0/8', IMAGE_URL_TIMEOUT: '500ms', MAX_UPLOAD_BYTES: '10MB' },
    });
  });
  afterAll(async () => {
    await system?.close();
    images.closeAllConnections();
    await new Promise((resolve) => images.close(resolve));
  });

  async function postJson(body: unknown) {
    const response = await request(`${system.apiUrl}/v1/jobs`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'x-api-key': system.apiKey, 'content-type': 'application/json' },
    });
    return { status: response.statusCode, body: (await response.body.json()) as Json };
  }

  it('fetches a JSON image_url into S3 byte for byte and processes it', async () => {
    const created = await postJson({ image_url: `${base}/shoe.jpg`, metadata: { sku: 'URL-1' } });
    expect(created.status).toBe(202);
    expect(created.body.metadata).toEqual({ sku: 'URL-1' });
    const record = await system.services.jobs.get(created.body.id);
    expect(sha256(await system.services.storage.getBuffer(record!.originalKey))).toBe(sha256(photo));
    const [view] = await settle(system, [created.body.id]);
    expect(view!.status).toBe('succeeded');
  });

  it('fetches a motion photo (a JPEG with a video after its EOI) whole and processes it', async () => {
    const created = await postJson({ image_url: `${base}/motion.jpg` });
    expect(created.status).toBe(202);
    const record = await system.services.jobs.get(created.body.id);
    expect(sha256(await system.services.storage.getBuffer(record!.originalKey))).toBe(sha256(motionPhoto));
    const [view] = await settle(system, [created.body.id]);
    expect(view!.status).toBe('succeeded');
  });

  it('accepts image_url as a form field and follows a redirect', async () => {
    const form = new FormData();
    form.append('image_url', `${base}/moved`);
    const response = await request(`${system.apiUrl}/v1/jobs`, {
      method: 'POST',
      body: form,
      headers: { 'x-api-key': system.apiKey },
    });
    expect(response.statusCode).toBe(202);
    await response.body.dump();
  });

  it('refuses a file and an image_url together with 400 ambiguous_image', async () => {
    const form = new FormData();
    form.append('file', new Blob([photo], { type: 'image/jpeg' }), 'a.jpg');
    form.append('image_url', `${base}/shoe.jpg`);
    const response = await request(`${system.apiUrl}/v1/jobs`, {
      method: 'POST',
      body: form,
      headers: { 'x-api-key': system.apiKey },
    });
    expect(response.statusCode).toBe(400);
    expect(((await response.body.json()) as Json).error.code).toBe('ambiguous_image');
  });

  it.each([
    ['a 404', '/missing.jpg', 422, 'image_url_unreachable'],
    ['an HTML page', '/page.html', 415, 'unsupported_media_type'],
    ['a body declared larger than the limit', '/huge.jpg', 413, 'file_too_large'],
    ['a server that never answers', '/hang.jpg', 422, 'image_url_unreachable'],
  ])('answers %s with %s %s and keeps nothing', async (_name, path, status, code) => {
    const before = await countJobs(system);
    const result = await postJson({ image_url: `${base}${path}` });
    expect(result.status).toBe(status);
    expect(result.body.error.code).toBe(code);
    expect(await countJobs(system)).toBe(before);
  });

  it('refuses private and metadata addresses outside the allow-list without connecting', async () => {
    for (const url of [
      'http://10.0.0.1/a.jpg',
      'http://169.254.169.254/latest',
      'file:///etc/passwd',
      'http://[::1]/a.jpg',
    ]) {
      const result = await postJson({ image_url: url });
      expect(result.status).toBe(422);
      expect(result.body.error.code).toBe('invalid_image_url');
    }
  });

  it('answers 400 for a JSON body without image_url or with unknown fields', async () => {
    expect((await postJson({ metadata: {} })).body.error.code).toBe('missing_file');
    expect((await postJson({ image_url: `${base}/shoe.jpg`, colour: 'red' })).body.error.code).toBe('unknown_field');
    expect((await postJson([1, 2])).status).toBe(400);
  });
});
