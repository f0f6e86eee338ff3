import dns, { type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector } from 'undici';

/**
 * The SSRF guard for client-supplied URLs (webhook URLs, `image_url`s).
 *
 * `checkUrl` gives early feedback when a URL is registered; the guarantee comes from
 * `createGuardedAgent`, which checks every address at connect time, after DNS, so a
 * name that resolves (or later re-resolves) to a private address is never connected to.
 *
 * Messages are shown to clients, so they never say what a name resolved to: that would map
 * the deployment's internal DNS (`minio`, `redis`) for anyone who submits a URL. `checkUrl`
 * only ever quotes the client's own host; the agent quotes nothing and logs the detail at
 * debug level.
 */

export type UnsafeUrlReason =
  | 'invalid_url' // not a URL at all
  | 'too_long' // longer than MAX_URL_LENGTH, before or after normalisation
  | 'bad_scheme' // anything but http: and https:
  | 'credentials' // user:pass@ in the authority
  | 'missing_host' // no host right after "scheme://" (e.g. http:///path, which WHATWG would re-read as host "path")
  | 'private_address' // the host is, or resolves to, an address that is not allowed
  | 'unresolvable'; // DNS answered with no address at all

export class UnsafeUrlError extends Error {
  override readonly name = 'UnsafeUrlError';
  /** Stable code for error tables that classify by code (permanent: retrying cannot help). */
  readonly code = 'ERR_UNSAFE_URL';
  readonly reason: UnsafeUrlReason;

  constructor(reason: UnsafeUrlReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface UrlPolicy {
  /** CIDRs (or single addresses) reachable despite the guard, e.g. `127.0.0.0/8`, `::1/128`. */
  allowPrivate: readonly string[];
}

const MAX_URL_LENGTH = 2048;

/** IPv4 ranges that are never a client's public endpoint (IANA special-purpose registry and cloud metadata). */
const DENIED_IPV4: readonly [string, number][] = [
  ['0.0.0.0', 8], // "this network"; 0.0.0.0 itself reaches the local host on Linux
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT (also holds 100.100.100.200, Alibaba Cloud metadata)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (also holds 169.254.169.254, AWS/GCP/Azure/OCI metadata)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation (TEST-NET-1)
  ['192.88.99.0', 24], // deprecated 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation (TEST-NET-2)
  ['203.0.113.0', 24], // documentation (TEST-NET-3)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, including 255.255.255.255 broadcast
  ['100.100.100.200', 32], // Alibaba Cloud metadata (listed on its own so it survives edits above)
  ['168.63.129.16', 32], // Azure host endpoint (wireserver): a public address every Azure VM can reach
];

/**
 * IPv6 ranges refused outright. Everything outside global unicast 2000::/3 is refused
 * anyway (see isPublicIPv6); the ranges outside it are listed so the table reads as the spec.
 * Forms that embed an IPv4 address are judged by that address in embeddedIPv4 instead.
 */
const DENIED_IPV6: readonly [string, number][] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215): embedding position is site-defined, never global
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments (Teredo, 2001::/32, is judged by its embedded IPv4 first)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation
  ['5f00::', 16], // SRv6 SIDs
  ['fc00::', 7], // unique local (also holds fd00:ec2::254, AWS metadata over IPv6)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

const deniedV4 = blockListOf(DENIED_IPV4, 'ipv4');
const deniedV6 = blockListOf(DENIED_IPV6, 'ipv6');
const globalUnicastV6 = blockListOf([['2000::', 3]], 'ipv6');

function blockListOf(ranges: readonly [string, number][], type: 'ipv4' | 'ipv6'): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of ranges) list.addSubnet(network, prefix, type);
  return list;
}

/**
 * Validates CIDRs (`10.0.0.0/8`, `::1/128`, or a bare address meaning a single host) into a
 * BlockList. Throws an Error naming the bad entry. A v4 entry also matches the IPv4-mapped
 * IPv6 form of its addresses (`::ffff:127.0.0.1`), which is the same host.
 */
export function parseCidrList(list: readonly string[]): BlockList {
  const blockList = new BlockList();
  for (const entry of list) {
    const [address = '', prefixText, extra] = entry.trim().split('/');
    const family = isIP(address);
    const maxPrefix = family === 6 ? 128 : 32;
    const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
    if (
      family === 0 ||
      extra !== undefined ||
      (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) ||
      prefix > maxPrefix
    ) {
      throw new Error(
        `invalid CIDR "${entry}": expected an IPv4 or IPv6 address with an optional /prefix (0-${maxPrefix}), e.g. 127.0.0.0/8 or ::1/128`,
      );
    }
    blockList.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return blockList;
}

/** Parsed allow-lists by the policy's own list: checking a 100,000-row manifest parses it once. */
const allowLists = new WeakMap<readonly string[], BlockList>();
function allowListOf(policy: UrlPolicy): BlockList {
  let allowList = allowLists.get(policy.allowPrivate);
  if (!allowList) {
    allowList = parseCidrList(policy.allowPrivate);
    allowLists.set(policy.allowPrivate, allowList);
  }
  return allowList;
}

/** True when the address may be connected to: public, or inside policy.allowPrivate. */
export function isAddressAllowed(address: string, policy: UrlPolicy): boolean {
  return isAllowedBy(address, allowListOf(policy));
}

function isAllowedBy(address: string, allowList: BlockList): boolean {
  const family = isIP(address);
  // A zone index (fe80::1%eth0) only makes sense on link-local addresses, which are refused anyway.
  if (family === 0 || address.includes('%')) return false;
  if (allowList.check(address, family === 6 ? 'ipv6' : 'ipv4')) return true;
  return family === 4 ? isPublicIPv4(address) : isPublicIPv6(address);
}

const isPublicIPv4 = (address: string): boolean => !deniedV4.check(address, 'ipv4');

function isPublicIPv6(address: string): boolean {
  const groups = ipv6Groups(address);
  const embedded = embeddedIPv4(groups);
  if (embedded) return embedded.every(isPublicIPv4);
  const canonical = groups.map((group) => group.toString(16)).join(':');
  return globalUnicastV6.check(canonical, 'ipv6') && !deniedV6.check(canonical, 'ipv6');
}

/** The IPv4 addresses an IPv6 address stands for, when it is one of the forms that embed one. */
function embeddedIPv4(groups: readonly number[]): string[] | undefined {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as [number, number, number, number, number, number, number, number];
  const leadingZeros = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  if (leadingZeros && (g5 === 0xffff || g5 === 0)) return [ipv4Of(g6, g7)]; // IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96 (also :: and ::1)
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return [ipv4Of(g6, g7)]; // NAT64 64:ff9b::/96
  if (g0 === 0x2002) return [ipv4Of(g1, g2)]; // 6to4 2002::/16
  if (g0 === 0x2001 && g1 === 0) return [ipv4Of(g2, g3), ipv4Of(~g6 & 0xffff, ~g7 & 0xffff)]; // Teredo: server, and client (stored inverted)
  return undefined;
}

const ipv4Of = (high: number, low: number): string => [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');

/** The eight 16-bit groups of a valid IPv6 address (with or without a trailing dotted quad). */
function ipv6Groups(address: string): number[] {
  let text = address;
  const dottedQuad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dottedQuad) {
    const [a, b, c, d] = dottedQuad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dottedQuad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const [head = '', tail] = text.split('::');
  if (tail === undefined) return parse(head);
  const left = parse(head);
  const right = parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** A host name that RFC 6761 pins to loopback, so it can be judged without DNS. */
const isLocalhostName = (hostname: string): boolean => /(^|\.)localhost\.?$/i.test(hostname);

/**
 * Parses and checks what can be checked without DNS: http(s) only, no credentials, at most
 * MAX_URL_LENGTH characters, a host present, and an IP-literal host (in any encoding WHATWG
 * normalises: 2852039166, 0x7f.1, 0177.0.0.1, [::ffff:7f00:1] …) must be allowed by the policy.
 * Returns the normalised URL, which is what must be requested. Throws UnsafeUrlError.
 */
export function checkUrl(input: string, policy: UrlPolicy): URL {
  if (input.length > MAX_URL_LENGTH)
    throw new UnsafeUrlError('too_long', `URL is longer than ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new UnsafeUrlError('invalid_url', 'not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UnsafeUrlError('bad_scheme', `scheme "${url.protocol.slice(0, -1)}" is not allowed; use http or https`);
  }
  // WHATWG drops tabs/newlines and leading spaces, then skips extra slashes: http:///x becomes http://x/.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: WHATWG URL parsing drops leading C0 controls and spaces; so does this
  const asParsed = input.replace(/[\t\n\r]/g, '').replace(/^[\u0000-\u0020]+/, '');
  if (!/^https?:\/\/[^/\\?#]/i.test(asParsed)) throw new UnsafeUrlError('missing_host', 'URL has no host after "://"');
  if (url.username !== '' || url.password !== '')
    throw new UnsafeUrlError('credentials', 'URL must not contain a user name or password');
  if (url.href.length > MAX_URL_LENGTH)
    throw new UnsafeUrlError('too_long', `URL is longer than ${MAX_URL_LENGTH} characters once normalised`);

  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const allowList = allowListOf(policy);
  if (isIP(host) !== 0 && !isAllowedBy(host, allowList)) {
    throw new UnsafeUrlError('private_address', `${host} is not a public address`);
  }
  if (isLocalhostName(host) && !isAllowedBy('127.0.0.1', allowList)) {
    throw new UnsafeUrlError('private_address', `${host} is a loopback name`);
  }
  return url;
}

/** A pino logger fits; only debug is used. */
interface GuardLog {
  debug(fields: Record<string, unknown>, message: string): void;
}

export interface GuardedAgentOptions {
  policy: UrlPolicy;
  /** Gets each refusal's host and address at debug level; the error itself names neither. */
  log?: GuardLog;
  /** Resolver to check and connect through; dns.lookup by default. Tests inject a stub. */
  lookup?: LookupFunction;
  connectTimeoutMs?: number;
}

/**
 * An undici Agent that checks every address at connect time: host names are resolved once
 * (all answers), refused if ANY answer is not allowed, and the socket connects to exactly
 * the checked answers, so DNS rebinding between check and connect is impossible. IP-literal
 * hosts, which net.connect never passes to `lookup`, are checked before connecting.
 * A refusal rejects the request with UnsafeUrlError (reason 'private_address').
 */
export function createGuardedAgent({ policy, lookup, connectTimeoutMs, log }: GuardedAgentOptions): Agent {
  const allowList = allowListOf(policy);
  const resolve: LookupFunction = lookup ?? ((hostname, options, callback) => dns.lookup(hostname, options, callback));

  const guardedLookup: LookupFunction = (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (error, answer, family) => {
      // DNS errors pass through untouched: ENOTFOUND and EAI_AGAIN keep their retry meaning.
      const checked = error ?? checkAnswer(hostname, answer, family, allowList, log);
      // Answer asynchronously, as dns.lookup does: tls.connect throws a TypeError when a
      // resolver that answers synchronously meets a connect that fails at once.
      process.nextTick(() => {
        if (checked instanceof Error) callback(checked, '', 0);
        else if (options.all) callback(null, checked);
        else callback(null, checked[0].address, checked[0].family);
      });
    });
  };

  const connectChecked = buildConnector({
    lookup: guardedLookup,
    ...(connectTimeoutMs === undefined ? {} : { timeout: connectTimeoutMs }),
  });
  const connect: buildConnector.connector = (options, callback) => {
    const host = options.hostname.startsWith('[') ? options.hostname.slice(1, -1) : options.hostname;
    if (isIP(host) !== 0 && !isAllowedBy(host, allowList)) {
      log?.debug({ host, address: host }, 'URL guard refused an address');
      callback(new UnsafeUrlError('private_address', AGENT_MESSAGES.private_address), null);
      return;
    }
    connectChecked(options, callback);
  };
  return new Agent({ connect });
}

/** What the agent's refusals say: neither the host (it may come from a redirect) nor what it resolved to. */
const AGENT_MESSAGES = {
  private_address: 'the address is not public (private, loopback, link-local and metadata addresses are refused)',
  unresolvable: 'the host resolved to no address',
} as const;

/** The resolver's answers when every one is allowed, else the UnsafeUrlError to fail the connect with. */
function checkAnswer(
  hostname: string,
  answer: string | LookupAddress[],
  family: number | undefined,
  allowList: BlockList,
  log: GuardedAgentOptions['log'],
): [LookupAddress, ...LookupAddress[]] | UnsafeUrlError {
  const addresses = typeof answer === 'string' ? [{ address: answer, family: family ?? isIP(answer) }] : answer;
  const [first, ...rest] = addresses;
  if (first === undefined) {
    log?.debug({ host: hostname }, 'URL guard found no address');
    return new UnsafeUrlError('unresolvable', AGENT_MESSAGES.unresolvable);
  }
  const refused = addresses.find(({ address }) => !isAllowedBy(address, allowList));
  if (refused) {
    log?.debug({ host: hostname, address: refused.address }, 'URL guard refused an address');
    return new UnsafeUrlError('private_address', AGENT_MESSAGES.private_address);
  }
  return [first, ...rest];
}
