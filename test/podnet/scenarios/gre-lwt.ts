// gre-lwt: one external GRE link on the tunnel side and `encap ip dst POD` routes.
import type { IpAddress } from '../../../src/model/types.js';
import type { ModeScenario } from './scenario.js';

export const greLwt: ModeScenario = {
  mode: 'gre-lwt',
  podIp: '203.0.113.32',
  vip: '203.0.113.232' as IpAddress,
  tunnelSide: (lab, pod) => lab.tunnelGreLwt('203.0.113.232', pod.ip),
  settings: { 'net/ipv4/conf/kst-gre/rp_filter': (v) => v === '2' },
};
