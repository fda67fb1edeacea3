import { describe, expect, it } from 'vitest';
import type { Session } from '../api/types';
import { groupOf } from './grouping';

const base: Session = {
  id: 'ses_1',
  title: 't',
  repo_url: '/r',
  repo_id: null,
  base_branch: 'main',
  branch: 'openinspect/1',
  model: 'm',
  effort: null,
  status: 'idle',
  sandbox_status: 'ready',
  creator_id: 'usr_1',
  parent_id: null,
  total_cost_usd: 0,
  last_seq: 3,
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:00Z',
};

describe('groupOf', () => {
  it('puts running sessions first, whatever their last prompt', () => {
    expect(groupOf({ ...base, status: 'active' }, { status: 'error', error_code: 'x' })).toBe('running');
  });
  it('asks for attention when the newest prompt failed or was interrupted', () => {
    expect(groupOf(base, { status: 'error', error_code: 'model_failed' })).toBe('attention');
    expect(groupOf(base, { status: 'interrupted', error_code: null })).toBe('attention');
    expect(groupOf({ ...base, sandbox_status: 'failed' })).toBe('attention');
  });
  it('files finished and stopped work under recent', () => {
    expect(groupOf(base, { status: 'success', error_code: null })).toBe('recent');
    expect(groupOf(base, { status: 'stopped', error_code: null })).toBe('recent');
    expect(groupOf(base)).toBe('recent');
  });
});
