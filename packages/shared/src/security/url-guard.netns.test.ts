import { networkInterfaces } from 'node:os';
import { connect, type LookupFunction } from 'node:net';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createGuardedAgent, UnsafeUrlError } from './url-guard.ts';

// Hands real private and public addresses to the guarded agent. Run only through
// scripts/test-netns.sh: inside a network namespace that has nothing but loopback, so a
// broken guard gets ENETUNREACH instead of reaching anything. The normal suite excludes
// this file; run anywhere else it fails here, before opening a single socket.
const interfaces = Object.keys(networkInterfaces());
if (process.env.CUTOUT_NETNS !== '1' || interfaces.some((name) => name !== 'lo')) {
  throw new Error(
    `not inside a loopback-only network namespace (CUTOUT_NETNS=${process.env.CUTOUT_NETNS ?? ''}, interfaces: ${interfaces.join(', ')}); run bash scripts/test-netns.sh`,
  );
}

const refusedLiterals = [
  'http://10.0.0.1/',
  'http://172.16.5.4/',
  'http://192.168.1.1/',
  'http://100.64.0.1/',
  'http://169.254.169.254/latest/meta-data/',
  'http://2852039166/',
  'http://0x7f.1/',
  'http://127.1/',
  'http://0177.0.0.1/',
  'http://0.0.0.0/',
  'http://100.100.100.200/',
  'http://168.63.129.16/',
  'http://198.18.0.1/',
  'http://192.0.2.1/',
  'http://224.0.0.1/',
  'http://255.255.255.255/',
  'https://10.0.0.1/',
  'https://169.254.169.254/',
  'http://[::]/',
  'http://[::1]/',
  'http://[::ffff:7f00:1]/',
  'http://[::ffff:a9fe:a9fe]/',
  'http://[64:ff9b::a9fe:a9fe]/',
  'http://[2002:a9fe:a9fe::]/',
  'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/',
  'http://[fe80::1]/',
  'http://[fc00::1]/',
  'http://[fd00:ec2::254]/',
  'http://[fec0::1]/',
  'http://[ff02::1]/',
  'http://[2001:db8::1]/',
];

const resolver: Record<string, string[]> = {
  'metadata.test': ['169.254.169.254'],
  'intranet.test': ['10.0.0.1'],
  'metadata6.test': ['fd00:ec2::254'],
  'public-then-private.test': ['93.184.215.14', '10.0.0.1'],
  'private-then-public.test': ['10.0.0.1', '93.184.215.14'],
  'dual-stack-private.test': ['2606:4700::1111', '::ffff:10.0.0.1'],
  'public.test': ['93.184.215.14'],
};
const lookup: LookupFunction = (hostname, options, callback) => {
  const entries = (resolver[hostname] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  if (entries.length === 0)
    return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
  if (options.all) callback(null, entries);
  else callback(null, entries[0]?.address ?? '', entries[0]?.family ?? 0);
};

const agent = createGuardedAgent({ policy: { allowPrivate: [] }, lookup, connectTimeoutMs: 2000 });
afterAll(() => agent.close());

const outcome = (url: string): Promise<unknown> =>
  request(url, { dispatcher: agent }).then(
    () => {
      throw new Error(`${url} answered inside the namespace`);
    },
    (error: unknown) => error,
  );

const rawConnectError = (host: string): Promise<string | undefined> =>
  new Promise((resolve) => {
    const socket = connect({ host, port: 80 });
    socket.on('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code));
  });

describe('the guarded agent inside a loopback-only network namespace', () => {
  it('runs where nothing off the machine is reachable', async () => {
    expect(await rawConnectError('10.0.0.1')).toBe('ENETUNREACH');
    expect(await rawConnectError('93.184.215.14')).toBe('ENETUNREACH');
    expect(await rawConnectError('2606:4700::1111')).toBe('ENETUNREACH');
  });

  it.each(refusedLiterals)('refuses %s before connecting', async (url) => {
    const error = await outcome(url);

    expect(error).toBeInstanceOf(UnsafeUrlError);
    expect(error).toMatchObject({ reason: 'private_address' });
  });

  it.each(Object.keys(resolver).filter((name) => name !== 'public.test'))(
    'refuses http://%s/, which resolves to a private address',
    async (hostname) => {
      const error = await outcome(`http://${hostname}/`);

      expect(error).toBeInstanceOf(UnsafeUrlError);
      expect(error).toMatchObject({ reason: 'private_address' });
    },
  );

  it.each(['http://93.184.215.14/', 'http://[2606:4700::1111]/', 'https://public.test/'])(
    'lets %s through to the network, where only the namespace stops it',
    async (url) => {
      expect(await outcome(url)).toMatchObject({ code: 'ENETUNREACH' });
    },
  );
});
