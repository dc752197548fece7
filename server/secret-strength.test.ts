import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../lib/errors.js';
import { MIN_SECRET_LENGTH, assertStrongSecret, secretWeakness } from './secret-strength.js';

describe('secretWeakness', () => {
  it('accepts what `openssl rand -base64 32` prints, every time (10 000 random secrets), and other generated secrets', () => {
    for (let i = 0; i < 10_000; i += 1) {
      const secret = randomBytes(32).toString('base64');
      expect(secretWeakness(secret), secret).toBeUndefined();
    }
    for (let i = 0; i < 1000; i += 1) {
      // The hub's own generated secret, and `openssl rand -hex 32`.
      expect(secretWeakness(randomBytes(32).toString('base64url'))).toBeUndefined();
      expect(secretWeakness(randomBytes(32).toString('hex'))).toBeUndefined();
    }
  });

  it('refuses a short secret, saying how long it is and must be', () => {
    expect(secretWeakness('x7#Kq'.repeat(6))).toMatch(/too short: 30 characters, expected at least 32/);
    expect(secretWeakness('')).toMatch(/too short: 0 characters/);
  });

  it('refuses one character repeated, and too little variety', () => {
    expect(secretWeakness('a'.repeat(MIN_SECRET_LENGTH))).toMatch(/too little variety: one character repeated/);
    expect(secretWeakness('ab'.repeat(40))).toMatch(
      /too little variety: only 2 different characters, expected at least 10/,
    );
    expect(secretWeakness('password'.repeat(4))).toMatch(/only 7 different characters/);
  });

  it('refuses secrets with variety but little entropy', () => {
    // 10 distinct characters, but mostly one of them.
    expect(secretWeakness(`${'a'.repeat(60)}bcdefghijk`)).toMatch(
      /too predictable: about \d+ bits .* expected at least 128/,
    );
    expect(secretWeakness('changeme-changeme-changeme-changeme')).toMatch(/too little variety|too predictable/);
  });

  it('never quotes the secret in its answer', () => {
    const secret = 'q'.repeat(40);
    expect(secretWeakness(secret)).not.toContain(secret.slice(0, 8));
  });
});

describe('assertStrongSecret', () => {
  it('throws a ConfigError naming where the secret came from', () => {
    expect(() => assertStrongSecret('a'.repeat(32), 'FARMLINK_HUB_SECRET (environment)')).toThrow(ConfigError);
    expect(() => assertStrongSecret('a'.repeat(32), 'FARMLINK_HUB_SECRET (environment)')).toThrow(
      /FARMLINK_HUB_SECRET \(environment\): weak secret: too little variety/,
    );
    expect(() =>
      assertStrongSecret(randomBytes(32).toString('base64'), 'FARMLINK_HUB_SECRET (environment)'),
    ).not.toThrow();
  });
});
