// mpls: the serving node pushes label 100 towards the pod over its veth; the pod pops it.
// The pod starts with strict reverse-path filtering on `all`, which would drop the popped
// packets arriving on lo: the mode must relax it on lo (loose) and put it back on removal.
import type { IpAddress } from '../../../src/model/types.js';
import { ENCAP, type ModeScenario } from './scenario.js';

export const mpls: ModeScenario = {
  mode: 'mpls',
  podIp: '203.0.113.33',
  vip: '203.0.113.233' as IpAddress,
  prepare: (lab, pod) => lab.set.sysctl(pod.netns, 'net.ipv4.conf.all.rp_filter', '1'),
  tunnelSide: (lab, pod) => lab.nodeMpls('203.0.113.233', pod, ENCAP.mplsLabel),
  settings: {
    'net/mpls/conf/eth0/input': (v) => v === '1',
    'net/mpls/platform_labels': (v) => Number(v) > ENCAP.mplsLabel,
    'net/ipv4/conf/lo/rp_filter': (v) => v === '2',
  },
};
