// gre-lwt: the tunnel node has one `gre external` link and per-route `encap ip dst POD`.
// The pod side is a metadata-collecting (external) GRE link: it accepts GRE to any of the
// pod's addresses from any sender, with or without a key, which is what a collect_md
// sender may produce; the VIP on it makes the inner packet local.
import { greKind, greObjects, GRE_POD_LINK } from './gre.js';
import type { PodModeDriver } from './mode.js';

export const greLwt: PodModeDriver = {
  mode: 'gre-lwt',
  unsupported: () => undefined,
  objects(ctx) {
    const kind = greKind(ctx.setup.podIp);
    return greObjects(ctx, {
      name: GRE_POD_LINK,
      kind,
      addArgs: ['type', kind, 'external'],
      expect: { external: true },
    });
  },
};
