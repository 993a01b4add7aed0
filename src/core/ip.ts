/**
 * IP address literals, pure (no `node:net`): the mesh wire accepts `tcp:` addresses only with
 * literal IPs, so a peer can never make a node resolve a name (docs/SECURITY.md, "Mesh
 * addresses"). The grammar is the textual form node's `net.isIP` accepts, minus IPv6 zone
 * identifiers (`%eth0`), which name a local interface and have no meaning between nodes.
 */

/** Dotted-quad IPv4: four decimal octets 0–255 without leading zeros ("10.0.0.1"). */
export function isIPv4Literal(s: string): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  return parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/**
 * IPv6 in RFC 4291 §2.2 text form: eight groups of 1–4 hex digits, at most one `::` standing
 * for one or more zero groups, optionally ending in a dotted-quad IPv4 (two groups).
 */
export function isIPv6Literal(s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groupsOf = (h: string, last: boolean): number | undefined => {
    if (h === '') return 0;
    const gs = h.split(':');
    let n = 0;
    for (let i = 0; i < gs.length; i++) {
      const g = gs[i]!;
      if (last && i === gs.length - 1 && g.includes('.')) {
        if (!isIPv4Literal(g)) return undefined;
        n += 2;
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(g)) n += 1;
      else return undefined;
    }
    return n;
  };
  if (halves.length === 1) return groupsOf(s, true) === 8;
  const head = groupsOf(halves[0]!, false);
  const tail = groupsOf(halves[1]!, true);
  return head !== undefined && tail !== undefined && head + tail <= 7;
}
