// gre: one classic GRE link per endpoint on the tunnel side (`type gre remote POD`).
import type { IpAddress } from '../../../src/model/types.js';
import type { ModeScenario } from './scenario.js';

export const gre: ModeScenario = {
  mode: 'gre',
  podIp: '203.0.113.31',
  vip: '203.0.113.231' as IpAddress,
  tunnelSide: (lab, pod) => lab.tunnelGre('203.0.113.231', pod.ip),
  settings: {
    'net/ipv4/conf/kst-gre/rp_filter': (v) => v === '2',
    'net/ipv4/conf/eth0/arp_ignore': (v) => v === '1',
    'net/ipv4/conf/eth0/arp_announce': (v) => v === '2',
  },
};
