// What each mode means, in one place: the tunnelled modes against mpls.
import { modeTraits } from '../../src/model/index.js';

describe('modeTraits', () => {
  it('tunnelled modes: tunnel nodes announce, hash over every endpoint, share storable tables', () => {
    for (const mode of ['gre', 'gre-lwt', 'vxlan-lwt'] as const) {
      expect(modeTraits(mode)).toEqual({ announcers: 'tunnel-nodes', hashOver: 'all-endpoints', sharedTables: true, podMplsRoute: false });
    }
  });

  it('mpls: serving nodes announce and hash over their own endpoints; nothing to share; the pod pops the label', () => {
    expect(modeTraits('mpls')).toEqual({ announcers: 'serving-nodes', hashOver: 'local-endpoints', sharedTables: false, podMplsRoute: true });
  });
});
