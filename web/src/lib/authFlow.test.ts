import { describe, expect, it } from 'vitest';
import { loginUrl, parseAuthFragment, parseLinkFragment, refusedReason, safeNext, signinError } from './authFlow';

describe('safeNext', () => {
  it('keeps same-origin paths with their query', () => {
    expect(safeNext('/')).toBe('/');
    expect(safeNext('/sessions/ses_1')).toBe('/sessions/ses_1');
    expect(safeNext('/new?repo=org/x&branch=main')).toBe('/new?repo=org/x&branch=main');
    expect(safeNext('/settings/tokens')).toBe('/settings/tokens');
  });

  it('refuses anything that could leave the origin', () => {
    for (const bad of [
      '//evil.example',
      '//evil.example/sessions',
      '/\\evil.example',
      'https://evil.example/',
      'javascript:alert(1)',
      'sessions/ses_1',
      ' /sessions',
      '/\t/evil.example',
      '/\n/evil.example',
      '',
    ])
      expect(safeNext(bad), JSON.stringify(bad)).toBe('/');
  });

  it('falls back to / when missing, and never lands on sign-in pages', () => {
    expect(safeNext(null)).toBe('/');
    expect(safeNext(undefined)).toBe('/');
    expect(safeNext('/signin')).toBe('/');
    expect(safeNext('/signin?error=oauth_denied')).toBe('/');
    expect(safeNext('/auth/complete')).toBe('/');
    expect(safeNext('/signing-things')).toBe('/signing-things');
  });
});

describe('parseAuthFragment', () => {
  it('reads the token and next from the fragment the callback sends', () => {
    // What the server builds: urlencode({"token": …, "next": …}).
    expect(parseAuthFragment('#token=oi_abc-123_XYZ&next=%2Fsessions%2Fses_1')).toEqual({
      token: 'oi_abc-123_XYZ',
      next: '/sessions/ses_1',
    });
    expect(parseAuthFragment('token=oi_abc&next=%2Fnew%3Frepo%3Dx')).toEqual({ token: 'oi_abc', next: '/new?repo=x' });
  });

  it('decodes form-encoded characters in the token', () => {
    expect(parseAuthFragment('#token=a%2Bb%3D&next=%2F').token).toBe('a+b=');
  });

  it('sanitises next', () => {
    expect(parseAuthFragment('#token=t&next=%2F%2Fevil.example').next).toBe('/');
    expect(parseAuthFragment('#token=t&next=https%3A%2F%2Fevil.example').next).toBe('/');
    expect(parseAuthFragment('#token=t&next=%2F%5Cevil.example').next).toBe('/');
    expect(parseAuthFragment('#token=t').next).toBe('/');
    expect(parseAuthFragment('#token=t&next=None').next).toBe('/');
  });

  it('has no token when the fragment is empty or lacks one', () => {
    expect(parseAuthFragment('')).toEqual({ token: null, next: '/' });
    expect(parseAuthFragment('#')).toEqual({ token: null, next: '/' });
    expect(parseAuthFragment('#next=%2Frepos')).toEqual({ token: null, next: '/repos' });
    expect(parseAuthFragment('#token=&next=%2F').token).toBeNull();
  });
});

describe('loginUrl', () => {
  it('adds the sanitised next', () => {
    expect(loginUrl('/auth/github/login', '/sessions/ses_1')).toBe('/auth/github/login?next=%2Fsessions%2Fses_1');
    expect(loginUrl('/auth/github/login', null)).toBe('/auth/github/login?next=%2F');
    expect(loginUrl('/auth/github/login', '//evil.example')).toBe('/auth/github/login?next=%2F');
    expect(loginUrl('/auth/github/login?x=1', '/repos')).toBe('/auth/github/login?x=1&next=%2Frepos');
  });
});

describe('signinError', () => {
  it('explains the known codes and keeps unknown ones readable', () => {
    expect(signinError('sign_in_refused')).toMatchObject({
      code: 'sign_in_refused',
      message: 'Your GitHub account is not allowed on this server',
    });
    for (const code of ['oauth_state_invalid', 'oauth_denied', 'scm_auth_failed', 'scm_failed', 'scm_unavailable', 'not_configured'])
      expect(signinError(code).message).not.toMatch(/did not work/);
    expect(signinError('weird')).toMatchObject({ code: 'weird', message: 'Signing in did not work' });
  });
});

describe('parseLinkFragment', () => {
  it('reads the code of a sign-in link', () => {
    expect(parseLinkFragment('#code=oil_abc-DEF_123')).toBe('oil_abc-DEF_123');
    expect(parseLinkFragment('code=oil_x')).toBe('oil_x');
  });

  it('refuses missing, oversized or odd codes', () => {
    for (const bad of ['', '#', '#code=', '#code=a%2Fb', '#code=<x>', `#code=${'a'.repeat(101)}`, '#token=oil_x']) {
      expect(parseLinkFragment(bad)).toBeNull();
    }
  });
});

describe('refusedReason', () => {
  it('says when a sign-in expired or was ended', () => {
    expect(refusedReason('token_expired')).toMatch(/sign-in expired/);
    expect(refusedReason('token_revoked')).toMatch(/signed out/);
    expect(refusedReason('unauthenticated')).toMatch(/refused/);
  });
});
