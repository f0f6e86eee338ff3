import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { newWebhookSecret } from '../../../packages/shared/src/stores/tenants.ts';
import { signWebhook } from './webhook-signing.ts';

const body = JSON.stringify({ type: 'job.succeeded', data: { id: 'job_abc', status: 'succeeded' } });

describe('newWebhookSecret', () => {
  it('is whsec_ followed by base64 of at least 24 bytes', () => {
    const secret = newWebhookSecret();

    expect(secret.startsWith('whsec_')).toBe(true);
    const encoded = secret.slice('whsec_'.length);
    expect(encoded).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(encoded, 'base64').length).toBeGreaterThanOrEqual(24);
  });

  it('is different every time', () => {
    expect(new Set(Array.from({ length: 100 }, () => newWebhookSecret())).size).toBe(100);
  });
});

describe('signWebhook', () => {
  it('produces headers a Standard Webhooks receiver verifies', () => {
    const secret = newWebhookSecret();
    const headers = signWebhook([secret], 'msg_1', new Date(), body);

    expect(headers['webhook-id']).toBe('msg_1');
    expect(headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('sends the timestamp in whole seconds', () => {
    const headers = signWebhook([newWebhookSecret()], 'msg_1', new Date('2030-01-02T03:04:05.678Z'), body);

    expect(headers['webhook-timestamp']).toBe(String(Date.UTC(2030, 0, 2, 3, 4, 5) / 1000));
  });

  it('signs with every secret during a rotation, each verifying on its own', () => {
    const oldSecret = newWebhookSecret();
    const newSecret = newWebhookSecret();
    const headers = signWebhook([newSecret, oldSecret], 'msg_2', new Date(), body);

    const signatures = headers['webhook-signature'].split(' ');
    expect(signatures).toHaveLength(2);
    for (const signature of signatures) expect(signature.startsWith('v1,')).toBe(true);
    expect(signatures[0]).not.toBe(signatures[1]);
    expect(new Webhook(newSecret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(oldSecret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('fails verification when the body is tampered with', () => {
    const secret = newWebhookSecret();
    const headers = signWebhook([secret], 'msg_3', new Date(), body);
    const tampered = body.replace('succeeded', 'failed');

    expect(() => new Webhook(secret).verify(tampered, headers)).toThrow();
  });

  it('fails verification when the message id is changed', () => {
    const secret = newWebhookSecret();
    const headers = signWebhook([secret], 'msg_4', new Date(), body);

    expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'msg_5' })).toThrow();
  });

  it('fails verification with a secret it was not signed with', () => {
    const headers = signWebhook([newWebhookSecret()], 'msg_6', new Date(), body);

    expect(() => new Webhook(newWebhookSecret()).verify(body, headers)).toThrow();
  });

  it('gives the same signature for the same message, secret, time and body', () => {
    const secret = newWebhookSecret();
    const at = new Date();

    expect(signWebhook([secret], 'msg_7', at, body)).toEqual(signWebhook([secret], 'msg_7', at, body));
  });
});
