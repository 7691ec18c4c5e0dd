// Which peers may speak for the client (policy `trustedProxies`). detour is
// normally the edge: a client's own X-Forwarded-For is whatever it chose to
// write, so it is dropped and the chain starts at the peer detour saw. Only a
// load balancer in front of detour, named by CIDR, gets its chain kept.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export type TrustedProxies = (peerAddress: string | undefined) => boolean;

const NOBODY: TrustedProxies = () => false;

/** A check for `cidrs` (already validated by the policy: `10.0.0.0/8`, `::1`, `192.0.2.7`). */
export function trustedProxies(cidrs: readonly string[]): TrustedProxies {
  if (cidrs.length === 0) return NOBODY;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = '', bits] = cidr.split('/');
    const type = isIPv4(address) ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return (peer) => {
    if (peer === undefined) return false;
    // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(peer)?.[1];
    if (mapped !== undefined) return list.check(mapped, 'ipv4');
    if (isIPv4(peer)) return list.check(peer, 'ipv4');
    return isIPv6(peer) && list.check(peer, 'ipv6');
  };
}
