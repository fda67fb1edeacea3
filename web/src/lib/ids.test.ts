import { describe, expect, it } from 'vitest';
import { RetryId, requestId } from './ids';

describe('RetryId', () => {
  it('gives a retry of the same content the same id', () => {
    const ids = new RetryId();
    const first = ids.for('{"repo":"a","prompt":"fix it"}');
    expect(ids.for('{"repo":"a","prompt":"fix it"}')).toBe(first);
  });

  it('gives changed content a new id', () => {
    const ids = new RetryId();
    const first = ids.for('a');
    expect(ids.for('b')).not.toBe(first);
  });

  it('gives the same content a new id once it succeeded', () => {
    const ids = new RetryId();
    const first = ids.for('a');
    ids.done();
    expect(ids.for('a')).not.toBe(first);
  });
});

describe('requestId', () => {
  it('is unique and fits the server limit', () => {
    const a = requestId();
    expect(a).not.toBe(requestId());
    expect(a.length).toBeLessThanOrEqual(128);
  });
});
