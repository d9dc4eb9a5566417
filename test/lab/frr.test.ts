import { FrrRouter, NetnsSet, waitFor } from '../../src/lab/index.js';

describe('FrrRouter (real FRR in a namespace)', () => {
  const ns = new NetnsSet();
  let router: FrrRouter | undefined;
  afterAll(async () => {
    await router?.stop();
    await ns.destroy();
  });

  it('starts zebra, bfdd and bgpd and answers vtysh', async () => {
    const r = await ns.create('kstr');
    router = new FrrRouter({ netns: r, bgpdConf: 'router bgp 64500\n bgp router-id 192.0.2.254\n no bgp ebgp-requires-policy\n' });
    await router.start();
    await waitFor(async () => (await router!.vtysh('show bgp summary')).includes('64500') || (await router!.vtysh('show bgp summary')).includes('No BGP neighbors'), 10000, 200);
    const out = await router.vtysh('show running-config');
    expect(out).toContain('router bgp 64500');
  });
});
