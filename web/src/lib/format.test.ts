import { describe, expect, it } from 'vitest';
import { initials, originLabel, usd } from './format';

describe('initials', () => {
  it('leave out asides in brackets and punctuation', () => {
    expect(initials('Sam (bot)')).toBe('SA');
    expect(initials('Ada Lovelace (you)')).toBe('AL');
    expect(initials('Grace Hopper [admin]')).toBe('GH');
    expect(initials('jean-luc.picard@example.com')).toBe('JC');
    expect(initials('(bot)')).toBe('BO');
    expect(initials('  ')).toBe('?');
    expect(initials('Émile Zola')).toBe('ÉZ');
  });
});

describe('usd', () => {
  it('is one format everywhere: dollars to four decimals, as the CLI prints them', () => {
    expect(usd(0)).toBe('$0.0000');
    expect(usd(0.004)).toBe('$0.0040');
    expect(usd(1.5)).toBe('$1.5000');
    expect(usd(null)).toBe('$0.0000');
    expect(usd(Number.NaN)).toBe('$0.0000');
  });
});

describe('originLabel', () => {
  it('names each door in words, and an unknown one as the server does', () => {
    expect(originLabel('web')).toBe('web app');
    expect(originLabel('cli')).toBe('CLI');
    expect(originLabel('slack')).toBe('Slack');
    expect(originLabel(undefined)).toBe('API');
    expect(originLabel('carrier-pigeon')).toBe('carrier-pigeon');
    expect(originLabel('constructor')).toBe('constructor');
  });
});
