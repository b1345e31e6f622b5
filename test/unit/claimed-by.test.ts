import { expect, it } from 'vitest';
import { claimedBy } from '../../src/workflows/human-actions.js';

// Who a refused Signal claims to be is recorded whatever it sent; a name that is no string must not fail the
// workflow task (found by test/fuzz/incident-actions.fuzz.test.ts, seed 806826374).

it('names the claimed sender of any argument without throwing', () => {
  expect(claimedBy({ by: 'carol' })).toBe('carol');
  expect(claimedBy({ by: 'x'.repeat(300) })).toHaveLength(100);
  expect(claimedBy({ by: 42 })).toBe('42');
  expect(claimedBy({ by: { by: 'alice' } })).toBe('[object Object]');
  expect(claimedBy({ by: JSON.parse('{"toString": 1}') })).toBe('(an object)');
  expect(claimedBy({ by: Object.create(null) })).toBe('(an object)');
  expect(claimedBy({ note: 'no by' })).toBeUndefined();
  expect(claimedBy('carol')).toBeUndefined();
});
