import { describe, expect, it } from 'vitest';
import { webHint, webHintText } from './hints';

describe('web hints', () => {
  it('phrases known codes for the web', () => {
    expect(webHintText('session_not_found', 'List sessions with `openinspect sessions list`')).toBe(
      'Pick a session from the session list',
    );
  });

  it('drops CLI advice and keeps what a browser user can do', () => {
    expect(webHintText('x', 'Sign in again (`openinspect login`, or the web app) or mint a new token')).not.toMatch(
      /openinspect|`/,
    );
    expect(webHintText('x', "Send 'Authorization: Bearer <token>' (see `openinspect serve`)")).not.toContain('openinspect');
    expect(webHint('x', 'Run `openinspect login`, set OPENINSPECT_TOKEN')).toBeNull();
    expect(webHint('x', 'Pass --branch with an existing base branch')).toBeNull();
  });

  it('shows backticked words as code, never raw backticks', () => {
    expect(webHint('x', 'Check the `main` branch exists')).toEqual([
      { text: 'Check the ', code: false },
      { text: 'main', code: true },
      { text: ' branch exists', code: false },
    ]);
    expect(webHintText('x', 'an odd ` backtick')).toBe('an odd  backtick');
  });

  it('leaves a plain hint alone', () => {
    expect(webHintText('x', 'It was deleted or renamed on the origin')).toBe('It was deleted or renamed on the origin');
  });
});
