import { expect, test } from '@jest/globals';
import { parseSelector, selectorMatches } from '../../src/model/index.js';

const matches = (sel: string, labels: Record<string, string>) => {
  const r = parseSelector(sel);
  if (!r.ok) throw new Error(r.error);
  return selectorMatches(r.selector, labels);
};

test('equality, inequality, existence and absence', () => {
  expect(matches('node=tunnel', { node: 'tunnel' })).toBe(true);
  expect(matches('node==tunnel', { node: 'tunnel' })).toBe(true);
  expect(matches('node=tunnel', { node: 'worker' })).toBe(false);
  expect(matches('node=tunnel,zone!=b', { node: 'tunnel', zone: 'a' })).toBe(true);
  expect(matches('node=tunnel, zone!=b', { node: 'tunnel', zone: 'b' })).toBe(false);
  expect(matches('zone!=b', {})).toBe(true);
  expect(matches('example.com/edge', { 'example.com/edge': '' })).toBe(true);
  expect(matches('!old', { old: 'x' })).toBe(false);
  expect(matches('', { any: 'thing' })).toBe(true);
});

test.each([
  ['node in (tunnel)', 'set-based requirement'],
  ['node=tunnel,', 'empty requirement'],
  ['no de=x', 'cannot parse'],
  ['-bad=x', 'invalid label key'],
  ['node=bad value!', 'invalid label value'],
  ['!node=x', 'cannot be combined'],
])('rejects %j (%s)', (sel, text) => {
  const r = parseSelector(sel);
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.error).toContain(text);
});
