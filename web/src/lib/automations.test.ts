import { describe, expect, it } from 'vitest';
import type { Automation } from '../api/types';
import {
  automationOfRef,
  cronOf,
  emptyForm,
  formatConditions,
  formOf,
  parseCondition,
  parseConditions,
  statusOf,
  triggerOf,
  wallTime,
} from './automations';

describe('parseCondition (the CLI syntax)', () => {
  it('reads PATH:OP:VALUE with JSON scalars and text', () => {
    expect(parseCondition('$.level:equals:error')).toEqual({ path: '$.level', op: 'equals', value: 'error' });
    expect(parseCondition('$.n:equals:3')).toEqual({ path: '$.n', op: 'equals', value: 3 });
    expect(parseCondition('$.n:equals:"3"')).toEqual({ path: '$.n', op: 'equals', value: '3' });
    expect(parseCondition('$.ok:equals:false')).toEqual({ path: '$.ok', op: 'equals', value: false });
    expect(parseCondition('$.url:contains:https://x')).toEqual({ path: '$.url', op: 'contains', value: 'https://x' });
    expect(parseCondition('$.tags[0:2]:contains:a')).toEqual({ path: '$.tags[0:2]', op: 'contains', value: 'a' });
  });

  it('takes a regular expression as written and exists without a value', () => {
    expect(parseCondition('$.m:matches:^a:[0-9]+$')).toEqual({ path: '$.m', op: 'matches', value: '^a:[0-9]+$' });
    expect(parseCondition('$.m:matches:12')).toEqual({ path: '$.m', op: 'matches', value: '12' });
    expect(parseCondition('  $.issue.id:exists ')).toEqual({ path: '$.issue.id', op: 'exists' });
  });

  it('reads a JSON object, for paths holding an operator word', () => {
    expect(parseCondition(`{"path": "$[?@.k == 'a:equals:b']", "op": "exists"}`)).toEqual({
      path: "$[?@.k == 'a:equals:b']",
      op: 'exists',
    });
  });

  it('says how to write a condition it cannot read', () => {
    for (const bad of ['$.level == error', ':exists', '{nope', '{"op": "exists"}']) {
      expect(() => parseCondition(bad)).toThrow(/condition/);
    }
    expect(() => parseCondition('$.a == b')).toThrow(/PATH:equals:VALUE/);
  });

  it('reads one per line, skipping blank lines', () => {
    expect(parseConditions('$.a:exists\n\n  \n$.b:equals:1\n')).toEqual([
      { path: '$.a', op: 'exists' },
      { path: '$.b', op: 'equals', value: 1 },
    ]);
  });
});

describe('formatConditions', () => {
  it('writes what parseConditions reads back', () => {
    const conditions = [
      { path: '$.level', op: 'equals' as const, value: 'error' },
      { path: '$.n', op: 'equals' as const, value: 3 },
      { path: '$.n', op: 'equals' as const, value: '3' },
      { path: '$.x', op: 'contains' as const, value: 'true' },
      { path: '$.m', op: 'matches' as const, value: '^1$' },
      { path: '$.id', op: 'exists' as const, value: null },
      { path: "$[?@.k == 'a:exists']", op: 'exists' as const, value: null },
    ];
    const text = formatConditions(conditions);
    expect(text.split('\n')[2]).toBe('$.n:equals:"3"');
    expect(parseConditions(text)).toEqual(
      conditions.map((c) => (c.op === 'exists' ? { path: c.path, op: c.op } : c)),
    );
  });
});

describe('the editor form', () => {
  it('makes a preset schedule, a custom one, and keeps what it does not show', () => {
    const form = { ...emptyForm('Europe/Berlin'), preset: 'weekly' as const };
    expect(triggerOf(form)).toEqual({ kind: 'schedule', cron: '0 0 * * 1', tz: 'Europe/Berlin', preset: 'weekly' });
    expect(cronOf({ preset: '', cron: '  30  6 * *   1-5 ' })).toBe('30 6 * * 1-5');
    const hook = { ...emptyForm(), kind: 'webhook' as const, auth: 'hmac' as const };
    const previous = { kind: 'webhook' as const, auth: 'bearer' as const, idempotency_header: 'X-Id' };
    expect(triggerOf(hook, previous)).toEqual({ kind: 'webhook', auth: 'hmac', idempotency_header: 'X-Id' });
    const gh = { ...emptyForm(), kind: 'github' as const, branches: 'main, release/*' };
    expect(triggerOf(gh)).toEqual({ kind: 'github', events: ['check_failed'], branches: ['main', 'release/*'] });
  });

  it('reads an automation back into the form', () => {
    const a = {
      name: 'Nightly',
      repo: 'acme/app',
      base_branch: null,
      model: null,
      effort: null,
      instructions: 'Sweep',
      trigger: { kind: 'schedule', cron: '15 3 * * *', tz: 'Asia/Tokyo', preset: null },
      conditions: [],
      concurrency: 'skip',
    } as unknown as Automation;
    const form = formOf(a);
    expect([form.preset, form.cron, form.tz, form.baseBranch]).toEqual(['', '15 3 * * *', 'Asia/Tokyo', '']);
    expect(triggerOf(form)).toEqual({ kind: 'schedule', cron: '15 3 * * *', tz: 'Asia/Tokyo', preset: null });
  });
});

describe('statusOf', () => {
  it('says paused with its reason, degraded with the failures', () => {
    expect(statusOf({ status: 'paused', paused_reason: '3 failed runs in a row', consecutive_failures: 3 })).toEqual({
      label: 'paused',
      detail: '3 failed runs in a row',
      tone: 'stopped',
    });
    expect(statusOf({ status: 'degraded', paused_reason: null, consecutive_failures: 1 }).detail).toBe('1 failed run in a row');
    expect(statusOf({ status: 'enabled', paused_reason: null, consecutive_failures: 0 }).label).toBe('enabled');
  });
});

describe('wallTime', () => {
  it("shows the zone's wall clock, not the browser's", () => {
    expect(wallTime('2026-12-03T00:00:00+01:00')).toBe('Thu 3 Dec 2026, 00:00 (UTC+01:00)');
    expect(wallTime('2026-03-29T03:00:00+02:00')).toBe('Sun 29 Mar 2026, 03:00 (UTC+02:00)');
    expect(wallTime('2026-12-02T14:15:00Z')).toBe('Wed 2 Dec 2026, 14:15 (UTC)');
    expect(wallTime('not a time')).toBe('not a time');
  });
});

describe('automationOfRef', () => {
  it('finds the automation of a session it started', () => {
    expect(automationOfRef('automation:aut_0123abcd')).toBe('aut_0123abcd');
    expect(automationOfRef('sentry:issue:42')).toBeNull();
    expect(automationOfRef(null)).toBeNull();
  });
});
