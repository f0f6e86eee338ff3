import dns from 'node:dns';
import { createServer, type Server } from 'node:http';
import { isIP, type AddressInfo, type LookupFunction } from 'node:net';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import {
  checkUrl,
  createGuardedAgent,
  isAddressAllowed,
  parseCidrList,
  UnsafeUrlError,
  type UnsafeUrlReason,
} from './url-guard.ts';

// Every test here stays on loopback, even if the guard is broken: IP literals are 127.x,
// and host names go through stub resolvers that only answer 127.x. Tests that hand real
// private and public addresses to the agent live in url-guard.netns.test.ts.

const noPrivate = { allowPrivate: [] };
const loopbackAllowed = { allowPrivate: ['127.0.0.0/8'] };

const refusedUrls: [string, UnsafeUrlReason][] = [
  ['http://169.254.169.254/latest/meta-data/', 'private_address'],
  ['http://2852039166/', 'private_address'], // 169.254.169.254 as one decimal number
  ['http://0xa9fea9fe/', 'private_address'], // … as one hex number
  ['http://0x7f.1/', 'private_address'],
  ['http://127.1/', 'private_address'],
  ['http://0177.0.0.1/', 'private_address'],
  ['http://017700000001/', 'private_address'],
  ['http://127.0.0.1./', 'private_address'],
  ['http://0/', 'private_address'],
  ['http://[::ffff:7f00:1]/', 'private_address'],
  ['http://[::ffff:127.0.0.1]/', 'private_address'],
  ['http://[::ffff:a9fe:a9fe]/', 'private_address'],
  ['http://[0:0:0:0:0:ffff:169.254.169.254]/', 'private_address'],
  ['http://[::127.0.0.1]/', 'private_address'], // IPv4-compatible
  ['http://[64:ff9b::a9fe:a9fe]/', 'private_address'], // NAT64
  ['http://[64:ff9b:1::808:808]/', 'private_address'], // local-use NAT64
  ['http://[2002:a9fe:a9fe::]/', 'private_address'], // 6to4
  ['http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', 'private_address'], // Teredo, client 192.0.2.45
  ['http://0.0.0.0/', 'private_address'],
  ['http://[::]/', 'private_address'],
  ['http://[::1]/', 'private_address'],
  ['http://10.0.0.1/', 'private_address'],
  ['http://172.16.5.4/', 'private_address'],
  ['http://192.168.1.1/', 'private_address'],
  ['http://100.64.0.1/', 'private_address'],
  ['http://192.0.2.1/', 'private_address'],
  ['http://224.0.0.1/', 'private_address'],
  ['http://255.255.255.255/', 'private_address'],
  ['http://[fe80::1]/', 'private_address'],
  ['http://[fec0::1]/', 'private_address'],
  ['http://[fc00::1]/', 'private_address'],
  ['http://[fd00:ec2::254]/', 'private_address'],
  ['http://[ff02::1]/', 'private_address'],
  ['http://[2001:db8::1]/', 'private_address'],
  ['http://100.100.100.200/', 'private_address'],
  ['http://198.18.0.1/', 'private_address'],
  ['http://localhost:8080/hook', 'private_address'],
  ['http://api.localhost/', 'private_address'],
  ['ftp://example.com/', 'bad_scheme'],
  ['file:///etc/passwd', 'bad_scheme'],
  ['gopher://x/', 'bad_scheme'],
  ['javascript:alert(1)', 'bad_scheme'],
  ['http://user:pass@example.com/', 'credentials'],
  ['http://user@example.com/', 'credentials'],
  [`https://example.com/${'a'.repeat(3000)}`, 'too_long'],
  [`https://example.com/${'é'.repeat(700)}`, 'too_long'], // 720 characters, 4220 once percent-encoded
  ['http:///nohost', 'missing_host'],
  ['http:/nohost', 'missing_host'],
  ['http://', 'invalid_url'],
  ['not a url', 'invalid_url'],
];

const allowedUrls = [
  'https://example.com/hook',
  'https://hooks.example.com:8443/cutout?tenant=a',
  'http://93.184.215.14/',
  'http://[2606:4700::1111]/',
  'http://[::ffff:5db8:d70e]/', // IPv4-mapped 93.184.215.14
  'http://[2002:5db8:d70e::1]/', // 6to4 of 93.184.215.14
];

describe('checkUrl', () => {
  it('refuses at least 30 unsafe URLs', () => {
    expect(refusedUrls.length).toBeGreaterThanOrEqual(30);
  });

  it.each(refusedUrls)('refuses %s (%s)', (input, reason) => {
    expect(() => checkUrl(input, noPrivate)).toThrowError(expect.objectContaining({ name: 'UnsafeUrlError', reason }));
  });

  it.each(allowedUrls)('accepts %s', (input) => {
    expect(checkUrl(input, noPrivate)).toBeInstanceOf(URL);
  });

  it('returns the normalised URL, which is the one to request', () => {
    expect(checkUrl('HTTPS://Example.COM:443/a/../hook', noPrivate).href).toBe('https://example.com/hook');
  });

  it('accepts loopback inside the allow-list and still refuses other private addresses', () => {
    expect(checkUrl('http://127.0.0.1:9999/', loopbackAllowed).port).toBe('9999');
    expect(checkUrl('http://localhost:9999/', loopbackAllowed).hostname).toBe('localhost');
    expect(() => checkUrl('http://10.0.0.1/', loopbackAllowed)).toThrowError(UnsafeUrlError);
    expect(() => checkUrl('http://169.254.169.254/', loopbackAllowed)).toThrowError(UnsafeUrlError);
  });
});

describe('isAddressAllowed', () => {
  it.each([
    '127.0.0.1',
    '10.255.255.255',
    '169.254.169.254',
    '100.100.100.200',
    '168.63.129.16',
    '198.19.255.255',
    '240.0.0.1',
    '::',
    '::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::a00:1',
    '64:ff9b::a00:1',
    '2002:c0a8:101::1',
    '2001:db8::1',
    'fd00:ec2::254',
    'fe80::1',
    'fe80::1%eth0',
    'ff02::1',
    '100::1',
    '2001:2::1',
    '::ffff:0:7f00:1',
    'not-an-address',
    '',
  ])('refuses %s', (address) => {
    expect(isAddressAllowed(address, noPrivate)).toBe(false);
  });

  it.each([
    '93.184.215.14',
    '8.8.8.8',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2001:0:4136:e378:8000:63bf:a3b7:f7f7',
  ])('allows %s', (address) => {
    expect(isAddressAllowed(address, noPrivate)).toBe(true);
  });

  it('allows addresses inside the allow-list, including the IPv4-mapped form of an allowed IPv4', () => {
    const policy = { allowPrivate: ['127.0.0.0/8', '::1/128', '10.1.0.0/16'] };

    expect(
      ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '10.1.2.3'].map((a) => isAddressAllowed(a, policy)),
    ).toEqual([true, true, true, true, true]);
    expect(
      ['10.2.0.1', '169.254.169.254', '64:ff9b::7f00:1', '2002:7f00:1::'].map((a) => isAddressAllowed(a, policy)),
    ).toEqual([false, false, false, false]);
  });
});

describe('parseCidrList', () => {
  it('accepts IPv4 and IPv6 CIDRs and bare addresses', () => {
    const list = parseCidrList(['127.0.0.0/8', '::1/128', '192.168.10.5', ' 10.0.0.0/8 ']);

    expect(list.check('127.1.2.3', 'ipv4')).toBe(true);
    expect(list.check('192.168.10.5', 'ipv4')).toBe(true);
    expect(list.check('192.168.10.6', 'ipv4')).toBe(false);
  });

  it.each([
    '10.0.0.0/33',
    '::1/129',
    '10.0.0.0/',
    '10.0.0.0/8/8',
    '10.0.0/8',
    'localhost',
    '10.0.0.0/-1',
    '10.0.0.0/0x8',
    '',
  ])('rejects "%s" with a message naming it', (cidr) => {
    expect(() => parseCidrList(['127.0.0.0/8', cidr])).toThrowError(`invalid CIDR "${cidr}"`);
  });
});

interface LoopbackServer {
  port: number;
  connections: () => number;
  close: () => Promise<void>;
}

async function startLoopbackServer(host: string): Promise<LoopbackServer> {
  let connections = 0;
  const server: Server = createServer((_req, res) => res.end('ok'));
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A resolver that only knows `answers`; anything else is ENOTFOUND. Honours `all` like dns.lookup. */
function stubLookup(answers: Record<string, string[]>): LookupFunction {
  return (hostname, options, callback) => {
    const addresses = answers[hostname];
    if (!addresses)
      return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
    const entries = addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    if (options.all) callback(null, entries);
    else callback(null, entries[0]?.address ?? '', entries[0]?.family ?? 0);
  };
}

describe('createGuardedAgent', () => {
  let server: LoopbackServer;
  let otherServer: LoopbackServer;
  const agents: ReturnType<typeof createGuardedAgent>[] = [];
  // Tripwire: if a guard bug bypassed the injected resolver, the system resolver must not
  // send a DNS query off the machine. It answers what needs no network (IP literals and
  // localhost, as /etc/hosts does) and records everything else as a failure.
  const unexpectedLookups: string[] = [];
  let systemLookup: MockInstance | undefined;
  const tripwire = (hostname: string, ...rest: unknown[]): void => {
    const callback = rest.at(-1) as Parameters<LookupFunction>[2];
    const options = (typeof rest[0] === 'object' && rest[0] !== null ? rest[0] : {}) as dns.LookupOptions;
    const address = isIP(hostname) !== 0 ? hostname : hostname === 'localhost' ? '127.0.0.1' : undefined;
    if (address === undefined) {
      unexpectedLookups.push(hostname);
      callback(Object.assign(new Error(`system DNS asked about ${hostname} in a test`), { code: 'ETRIPWIRE' }), '', 0);
      return;
    }
    if (options.all) callback(null, [{ address, family: isIP(address) }]);
    else callback(null, address, isIP(address));
  };

  const agent = (options: Parameters<typeof createGuardedAgent>[0]) => {
    const created = createGuardedAgent({ connectTimeoutMs: 2000, ...options });
    agents.push(created);
    return created;
  };
  const refusal = (url: string, dispatcher: ReturnType<typeof createGuardedAgent>) =>
    request(url, { dispatcher }).then(
      () => {
        throw new Error(`${url} was requested`);
      },
      (error: unknown) => error,
    );

  beforeAll(async () => {
    systemLookup = vi.spyOn(dns, 'lookup').mockImplementation(tripwire as typeof dns.lookup);
    server = await startLoopbackServer('127.0.0.1');
    otherServer = await startLoopbackServer('127.0.0.2');
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.close()));
    expect(unexpectedLookups.splice(0)).toEqual([]);
  });
  afterAll(async () => {
    await Promise.all([server.close(), otherServer.close()]);
    systemLookup?.mockRestore();
  });

  it('connects to a host name that resolves to an allowed address', async () => {
    const lookup = stubLookup({ 'ok.test': ['127.0.0.1'] });
    const response = await request(`http://ok.test:${server.port}/hook`, {
      dispatcher: agent({ policy: loopbackAllowed, lookup }),
    });

    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('ok');
  });

  it('connects to an allowed IP literal', async () => {
    const response = await request(`http://127.0.0.1:${server.port}/`, {
      dispatcher: agent({ policy: loopbackAllowed }),
    });

    expect(await response.body.text()).toBe('ok');
  });

  it('refuses a host name that resolves to a private address before opening a socket', async () => {
    const before = server.connections();
    const error = await refusal(
      `http://evil.test:${server.port}/`,
      agent({ policy: noPrivate, lookup: stubLookup({ 'evil.test': ['127.0.0.1'] }) }),
    );

    expect(error).toBeInstanceOf(UnsafeUrlError);
    expect(error).toMatchObject({ reason: 'private_address', code: 'ERR_UNSAFE_URL' });
    expect(server.connections()).toBe(before);
  });

  it('refuses over https too, before the TLS handshake', async () => {
    const before = server.connections();
    const error = await refusal(
      `https://evil.test:${server.port}/`,
      agent({ policy: noPrivate, lookup: stubLookup({ 'evil.test': ['127.0.0.1'] }) }),
    );

    expect(error).toMatchObject({ name: 'UnsafeUrlError', reason: 'private_address' });
    expect(server.connections()).toBe(before);
  });

  it('refuses a private IP literal, which never goes through DNS', async () => {
    const before = server.connections();
    const dispatcher = agent({ policy: noPrivate, lookup: stubLookup({}) });

    expect(await refusal(`http://127.0.0.1:${server.port}/`, dispatcher)).toMatchObject({ reason: 'private_address' });
    expect(await refusal(`http://[::1]:${server.port}/`, dispatcher)).toMatchObject({ reason: 'private_address' });
    expect(await refusal(`http://[::ffff:127.0.0.1]:${server.port}/`, dispatcher)).toMatchObject({
      reason: 'private_address',
    });
    expect(server.connections()).toBe(before);
  });

  it('refuses when any of several DNS answers is not allowed, whatever their order', async () => {
    // 127.0.0.2 stands in for a public address: allowed by the policy, and still on loopback.
    const policy = { allowPrivate: ['127.0.0.2/32'] };
    const lookup = stubLookup({
      'mixed.test': ['127.0.0.2', '127.0.0.1'],
      'mixed-reversed.test': ['127.0.0.1', '127.0.0.2'],
    });
    const [before, otherBefore] = [server.connections(), otherServer.connections()];
    const dispatcher = agent({ policy, lookup });

    expect(await refusal(`http://mixed.test:${otherServer.port}/`, dispatcher)).toBeInstanceOf(UnsafeUrlError);
    expect(await refusal(`http://mixed-reversed.test:${otherServer.port}/`, dispatcher)).toBeInstanceOf(UnsafeUrlError);
    expect([server.connections(), otherServer.connections()]).toEqual([before, otherBefore]);
  });

  it('refuses an IPv4-mapped IPv6 answer for a private IPv4', async () => {
    const error = await refusal(
      `http://mapped.test:${server.port}/`,
      agent({ policy: noPrivate, lookup: stubLookup({ 'mapped.test': ['::ffff:127.0.0.1'] }) }),
    );

    expect(error).toMatchObject({ reason: 'private_address' });
  });

  it('guards the system resolver by default', async () => {
    const before = server.connections();
    const error = await refusal(`http://localhost:${server.port}/`, agent({ policy: noPrivate }));

    expect(error).toMatchObject({ reason: 'private_address' });
    expect(server.connections()).toBe(before);
  });

  it('passes DNS failures through unchanged so they keep their retry meaning', async () => {
    const error = await refusal(
      `http://missing.test:${server.port}/`,
      agent({ policy: loopbackAllowed, lookup: stubLookup({}) }),
    );

    expect(error).not.toBeInstanceOf(UnsafeUrlError);
    expect(error).toMatchObject({ code: 'ENOTFOUND' });
  });

  it('refuses a name with no address as unresolvable', async () => {
    const error = await refusal(
      `http://empty.test:${server.port}/`,
      agent({ policy: loopbackAllowed, lookup: stubLookup({ 'empty.test': [] }) }),
    );

    expect(error).toMatchObject({ reason: 'unresolvable' });
  });

  it('says a refused address is not public without naming the host or what it resolved to, and logs both at debug', async () => {
    const debug: Record<string, unknown>[] = [];
    const log = { debug: (fields: Record<string, unknown>) => void debug.push(fields) };
    const lookup = stubLookup({ 'storage.internal.test': ['127.0.0.9'] });
    const dispatcher = agent({ policy: noPrivate, lookup, log });

    const byName = (await refusal(`http://storage.internal.test:${server.port}/`, dispatcher)) as Error;
    const byLiteral = (await refusal(`http://127.0.0.9:${server.port}/`, dispatcher)) as Error;

    for (const error of [byName, byLiteral]) {
      expect(error).toMatchObject({ reason: 'private_address' });
      expect(error.message).toContain('not public');
      expect(error.message).not.toMatch(/127\.0\.0\.9|storage\.internal/);
    }
    expect(debug).toEqual([
      { host: 'storage.internal.test', address: '127.0.0.9' },
      { host: '127.0.0.9', address: '127.0.0.9' },
    ]);
  });

  it('says an empty DNS answer resolved to no address without naming the host', async () => {
    const error = (await refusal(
      `http://empty.internal.test:${server.port}/`,
      agent({ policy: loopbackAllowed, lookup: stubLookup({ 'empty.internal.test': [] }) }),
    )) as Error;

    expect(error.message).toBe('the host resolved to no address');
  });

  it('rejects a bad CIDR in the policy when the agent is built', () => {
    expect(() => createGuardedAgent({ policy: { allowPrivate: ['127.0.0.0/40'] } })).toThrowError(
      'invalid CIDR "127.0.0.0/40"',
    );
  });
});
