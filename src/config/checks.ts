// Rules the zod schema cannot express field by field: addresses and CIDRs, references
// between fields (bfdProfile -> bfd.profiles), overlapping pools, selector syntax.
// Each returns issues with the field path and the bad value, like schema errors.
import { bigIntToIp, cidrRange, cidrsOverlap, classifyIp, ipFamily, parseCidrDetailed, parseIp, parseSelector } from '../model/index.js';
import type { Cidr } from '../model/index.js';
import type { Config } from './schema.js';

export interface ConfigIssue {
  /** Field path: "bgp.peers[0].address"; "" for the whole file. */
  readonly path: string;
  readonly message: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ANNOTATION_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

function hostPort(text: string): boolean {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return false;
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  return port >= 1 && port <= 65535 && (parseIp(host) !== undefined || /^[A-Za-z0-9.-]+$/.test(host));
}

export function checkConfig(c: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });

  if (!ANNOTATION_KEY.test(c.annotationKey)) add('annotationKey', `"${c.annotationKey}" is not a valid annotation key (prefix/name)`);
  const sel = parseSelector(c.tunnelNodeSelector);
  if (!sel.ok) add('tunnelNodeSelector', `"${c.tunnelNodeSelector}": ${sel.error}`);
  if (c.bgp.routerId !== undefined) {
    const ip = parseIp(c.bgp.routerId);
    if (!ip || ipFamily(ip) !== 4) add('bgp.routerId', `"${c.bgp.routerId}" is not an IPv4 address (a BGP router id is a 32-bit dotted quad)`);
  }
  if (!hostPort(c.bgp.grpcAddress)) add('bgp.grpcAddress', `"${c.bgp.grpcAddress}" is not host:port`);
  if (!hostPort(c.api.listen)) add('api.listen', `"${c.api.listen}" is not host:port`);
  // A quiet, healthy watch hears from the server only at each bookmark, which the
  // inactivity timeout is sized to outlast: a shorter stale threshold flags healthy feeds.
  if (c.kube.staleAfterSeconds < c.kube.watchInactivitySeconds) {
    add('kube.staleAfterSeconds', `${c.kube.staleAfterSeconds}s is shorter than kube.watchInactivitySeconds (${c.kube.watchInactivitySeconds}s): quiet, healthy watches would be reported stale between bookmarks`);
  }

  for (const name of Object.keys(c.bfd.profiles)) {
    if (!DNS_LABEL.test(name)) add(`bfd.profiles.${name}`, `profile name "${name}" is not a lower-case DNS label`);
  }
  const peerAddrs = new Map<string, number>();
  const peerNames = new Map<string, number>();
  c.bgp.peers.forEach((p, i) => {
    const path = `bgp.peers[${i}]`;
    const ip = parseIp(p.address);
    if (!ip) add(`${path}.address`, `"${p.address}" is not an IPv4 or IPv6 address`);
    else if (classifyIp(ip) !== 'unicast' && classifyIp(ip) !== 'link-local') add(`${path}.address`, `${ip} is not a unicast address (${classifyIp(ip)})`);
    else if (peerAddrs.has(ip)) add(`${path}.address`, `${ip} is already bgp.peers[${peerAddrs.get(ip)}]`);
    else peerAddrs.set(ip, i);
    if (p.bfdProfile !== undefined && !(p.bfdProfile in c.bfd.profiles)) {
      const known = Object.keys(c.bfd.profiles);
      add(`${path}.bfdProfile`, `"${p.bfdProfile}" is not a profile under bfd.profiles (${known.length ? `defined: ${known.join(', ')}` : 'none defined'})`);
    }
    if (p.name !== undefined) {
      if (!DNS_LABEL.test(p.name)) add(`${path}.name`, `"${p.name}" is not a lower-case DNS label`);
      else if (peerNames.has(p.name)) add(`${path}.name`, `"${p.name}" is already the name of bgp.peers[${peerNames.get(p.name)}]`);
      else peerNames.set(p.name, i);
    }
    const ps = parseSelector(p.nodeSelector);
    if (!ps.ok) add(`${path}.nodeSelector`, `"${p.nodeSelector}": ${ps.error}`);
    if (p.sourceAddress !== undefined) {
      const src = parseIp(p.sourceAddress);
      if (!src) add(`${path}.sourceAddress`, `"${p.sourceAddress}" is not an IPv4 or IPv6 address`);
      else if (ip && ipFamily(src) !== ipFamily(ip)) add(`${path}.sourceAddress`, `${src} is IPv${ipFamily(src)} but the peer ${ip} is IPv${ipFamily(ip)}`);
    }
    // A password in the ConfigMap is readable by everyone who can read the ConfigMap, and
    // ends up in backups and diffs: refused, with the two places it belongs instead.
    if (p.password !== undefined) {
      add(`${path}.password`, 'a password in the configuration is not accepted (a ConfigMap is no place for a secret): put it in a Secret in the agent\'s namespace and set passwordSecretRef: {name: SECRET, key: KEY}, or mount it and set passwordFile: PATH');
    }
    if (p.passwordSecretRef !== undefined && p.passwordFile !== undefined) add(`${path}.passwordFile`, 'set passwordSecretRef or passwordFile, not both');
    if (p.passwordSecretRef !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(p.passwordSecretRef.name)) add(`${path}.passwordSecretRef.name`, `"${p.passwordSecretRef.name}" is not a Secret name (a DNS subdomain)`);
    if (p.passwordSecretRef !== undefined && !/^[-._a-zA-Z0-9]{1,253}$/.test(p.passwordSecretRef.key)) add(`${path}.passwordSecretRef.key`, `"${p.passwordSecretRef.key}" is not a Secret data key ([-._a-zA-Z0-9]+)`);
    if (p.keepaliveSeconds * 3 > p.holdTimeSeconds) add(`${path}.keepaliveSeconds`, `${p.keepaliveSeconds}s is more than a third of holdTimeSeconds (${p.holdTimeSeconds}s)`);
  });

  const seenPool = new Map<string, number>();
  const allCidrs: { cidr: Cidr; path: string; pool: string }[] = [];
  c.pools.forEach((pool, i) => {
    const path = `pools[${i}]`;
    if (seenPool.has(pool.name)) add(`${path}.name`, `"${pool.name}" is already the name of pools[${seenPool.get(pool.name)}]`);
    else seenPool.set(pool.name, i);
    pool.peers.forEach((ref, j) => {
      const ip = parseIp(ref);
      if (!c.bgp.peers.some((p) => p.name === ref || (ip !== undefined && parseIp(p.address) === ip))) {
        add(`${path}.peers[${j}]`, `"${ref}" is not the name or address of a bgp.peers entry (${c.bgp.peers.map((p) => p.name ?? p.address).join(', ') || 'none configured'})`);
      }
    });
    if (pool.serviceSelector) {
      const ss = parseSelector(pool.serviceSelector);
      if (!ss.ok) add(`${path}.serviceSelector`, `"${pool.serviceSelector}": ${ss.error}`);
    }
    pool.namespaces.forEach((ns, j) => {
      if (ns !== '*' && !DNS_LABEL.test(ns)) add(`${path}.namespaces[${j}]`, `"${ns}" is not a namespace name or "*"`);
    });
    pool.cidrs.forEach((text, j) => {
      const cpath = `${path}.cidrs[${j}]`;
      const r = parseCidrDetailed(text, true);
      if (!r.ok) return add(cpath, `"${text}": ${r.error}`);
      // Judge a range by its first and last address: a pool reaching into loopback,
      // multicast, link-local or unspecified space is a mistake, not an intent.
      const range = cidrRange(r.cidr);
      const bad = [range.first, range.last].map((n) => classifyIp(bigIntToIp(n, range.family))).find((k) => k !== 'unicast');
      if (bad) return add(cpath, `"${text}" contains ${bad} addresses, which cannot be VIPs`);
      for (const other of allCidrs) {
        if (cidrsOverlap(other.cidr, r.cidr)) {
          add(cpath, `"${text}" overlaps ${other.path} (${other.cidr}${other.pool !== pool.name ? ` in pool "${other.pool}"` : ''}); every address must belong to one pool`);
          return;
        }
      }
      allCidrs.push({ cidr: r.cidr, path: cpath, pool: pool.name });
    });
    pool.communities.forEach((v, j) => {
      if (v.split(':').some((x) => Number(x) > 65535)) add(`${path}.communities[${j}]`, `"${v}": each half of a community is 0..65535`);
    });
    pool.largeCommunities.forEach((v, j) => {
      if (v.split(':').some((x) => Number(x) > 4294967295)) add(`${path}.largeCommunities[${j}]`, `"${v}": each part of a large community is 0..4294967295`);
    });
  });
  return issues;
}
