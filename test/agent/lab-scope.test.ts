// A lab agent considers only its own lab's pod namespaces: named ones with the lab's prefix,
// or runtime-made ones whose process carries KST_LAB_POD=<prefix> (container mode).
import { describe, expect, it } from '@jest/globals';
import { labPodScope } from '../../src/agent/lab-scope.js';

describe('labPodScope', () => {
  const environs: Record<string, string> = {
    '/proc/100/environ': 'PATH=/bin\0KST_LAB_POD=h5-\0HOME=/',
    '/proc/200/environ': 'KST_LAB_POD=h3-\0',
    '/proc/300/environ': 'KST_LAB_POD=h5-x\0', // a longer prefix is another lab
  };
  const read = (p: string): string => {
    const e = environs[p];
    if (e === undefined) throw new Error('ENOENT');
    return e;
  };
  const accept = labPodScope('h5-', read);

  it('takes named namespaces with the prefix only', () => {
    expect(accept({ path: '/run/netns/h5-worker-1-a' })).toBe(true);
    expect(accept({ path: '/run/netns/h3-worker-1-a' })).toBe(false);
    expect(accept({ path: '/var/run/netns/h5-worker-1-a' })).toBe(true);
  });

  it('takes a runtime-made namespace when its process carries the lab marker, exactly', () => {
    expect(accept({ path: '/proc/100/ns/net' })).toBe(true);
    expect(accept({ path: '/proc/200/ns/net' })).toBe(false);
    expect(accept({ path: '/proc/300/ns/net' })).toBe(false);
    expect(accept({ path: '/proc/400/ns/net' })).toBe(false); // gone, or unreadable
    expect(accept({ path: '/somewhere/else' })).toBe(false);
  });
});
