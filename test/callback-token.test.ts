import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallbackTokens, callbackTokenMatches } from '../src/sessions/callback-token.js';

const tokens = new CallbackTokens('callback-token-test-secret-0123456789abcdef');
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

test('a token the service issued is genuine and matches only its own stored hash', () => {
  const a = tokens.issue();
  const b = tokens.issue();
  assert.match(a.token, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.token, b.token);
  assert.ok(tokens.isGenuine(a.token));
  assert.ok(callbackTokenMatches(a.token, a.hash));
  assert.ok(!callbackTokenMatches(a.token, b.hash));
  assert.ok(!a.hash.includes(a.token));
});

test('changing any character of a genuine token makes it forged', () => {
  const { token } = tokens.issue();
  for (let i = 0; i < token.length; i++) {
    const replacement = BASE64URL[(BASE64URL.indexOf(token[i]!) + 1) % 64]!;
    const changed = token.slice(0, i) + replacement + token.slice(i + 1);
    assert.ok(!tokens.isGenuine(changed), `position ${i}`);
  }
});

test('tokens of another secret, other lengths, padding or foreign characters are forged', () => {
  const other = new CallbackTokens('another-secret-entirely-0123456789abcdef').issue().token;
  const { token } = tokens.issue();
  for (const candidate of [other, '', 'x', token.slice(0, -1), `${token}A`, `${token}=`, token.replace(/.$/, '.'), `${token.slice(0, -1)}+`]) {
    assert.ok(!tokens.isGenuine(candidate), JSON.stringify(candidate));
  }
});
