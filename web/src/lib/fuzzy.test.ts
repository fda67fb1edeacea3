import { describe, expect, it } from 'vitest';
import { fuzzyFilter, fuzzyScore } from './fuzzy';

describe('fuzzy', () => {
  it('matches characters in order only', () => {
    expect(fuzzyScore('nss', 'New session')).not.toBeNull();
    expect(fuzzyScore('ssn', 'New session')).not.toBeNull();
    expect(fuzzyScore('xyz', 'New session')).toBeNull();
  });

  it('ranks substrings and word starts first', () => {
    const items = ['Toggle theme', 'Sign out', 'New session', 'Repos'];
    expect(fuzzyFilter('se', items, (x) => x)[0]).toBe('New session');
    expect(fuzzyFilter('tt', items, (x) => x)).toEqual(['Toggle theme']);
    expect(fuzzyFilter('', items, (x) => x)).toEqual(items);
  });
});
