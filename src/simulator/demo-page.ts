/**
 * `/demo`: a merchant page in miniature, for trying the whole flow in a browser. Self-contained
 * (inline CSS and script, no external assets); the page's script and style are allowed by their
 * SHA-256 hashes, so the CSP needs neither 'unsafe-inline' nor a nonce.
 */
import { createHash } from 'node:crypto';

export interface DemoPageSettings {
  /** Where the browser reaches the service (CORS must allow the page's origin there). */
  serviceUrl: string;
  /** Lifetime of the tokens minted by /demo/token, shown on the page. */
  tokenTtlSeconds: number;
}

const STYLE = `[hidden]{display:none!important}
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2.5rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem;margin-bottom:.2rem}h2{font-size:1.05rem;margin:1.6rem 0 .6rem}
section{border:1px solid #ddd;border-radius:.4rem;padding:.2rem 1rem 1rem;margin-top:1rem}
label{display:block;margin-bottom:.3rem;color:#555}
input{font-size:1rem;padding:.45rem .6rem;border:1px solid #bbb;border-radius:.3rem;width:14rem}
button,a.button{display:inline-block;font-size:1rem;padding:.5rem 1.2rem;border:0;border-radius:.3rem;color:#fff;
background:#1565c0;cursor:pointer;text-decoration:none;margin:.5rem .5rem 0 0}
button.secondary{background:#757575}button:disabled{opacity:.5;cursor:default}
dl{display:grid;grid-template-columns:auto 1fr;gap:.35rem 1rem;margin:.4rem 0}dt{color:#666}
dd{margin:0;font-family:ui-monospace,monospace;word-break:break-all}
.status{display:inline-block;font-family:system-ui,sans-serif;font-weight:600;font-size:1.15rem;padding:.1rem .7rem;
border-radius:1rem;background:#eee;color:#333}
.status[data-status=pending],.status[data-status=verifying]{background:#fff3cd;color:#7a5b00}.status[data-status=passed]{background:#d7f0d9;color:#1b5e20}
.status[data-status=failed],.status[data-status=error]{background:#fbd9d7;color:#b71c1c}
.status[data-status=expired]{background:#e0e0e0;color:#424242}
.error{background:#fbd9d7;color:#8e1111;padding:.6rem .8rem;border-radius:.3rem;white-space:pre-wrap;font-family:inherit}
.note{color:#666;font-size:.85rem}details{margin-top:.6rem}pre{font-size:.8rem;white-space:pre-wrap;word-break:break-all}`;

const SCRIPT = `(() => {
  'use strict';
  const config = JSON.parse(document.getElementById('demo-config').textContent);
  const service = config.serviceUrl;
  const $ = (id) => document.getElementById(id);
  const KEY = 'kycDemo.';
  const store = {
    get(key) { try { return JSON.parse(sessionStorage.getItem(KEY + key) || 'null'); } catch { return null; } },
    set(key, value) { sessionStorage.setItem(KEY + key, JSON.stringify(value)); },
    remove(key) { sessionStorage.removeItem(KEY + key); },
  };
  const BIZ_ID = /^[A-Za-z0-9]{1,32}$/;
  // Statuses no later event changes; anything else (pending, verifying) is asked for again.
  const FINAL = ['passed', 'failed', 'expired', 'error'];
  // Statuses a session can be resumed from (a new transaction): no outcome, no callback being verified.
  const RESUMABLE = ['pending', 'expired', 'error'];
  // How long each status request may wait for a change (the service allows up to 30 s).
  const WAIT_S = 25;
  let pollTimer;
  let pollFor;
  let pollAbort;

  function setError(text) {
    $('error').textContent = text || '';
    $('error').hidden = !text;
  }

  // The token endpoint plays the merchant's own sign-in: it hands out a short-lived caller JWT.
  async function signIn(user) {
    const res = await fetch('/demo/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.message || 'Sign-in failed (HTTP ' + res.status + ')');
    const session = { user: body.user, token: body.token, expiresAt: body.expiresAt };
    store.set('session', session);
    return session;
  }

  async function bearer() {
    let session = store.get('session');
    if (!session) throw new Error('Sign in first.');
    if (Date.parse(session.expiresAt) - Date.now() < 30000) session = await signIn(session.user);
    return 'Bearer ' + session.token;
  }

  async function callService(method, path, body, signal) {
    const headers = { authorization: await bearer() };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(service + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch {
      const err = new Error('Could not reach the service at ' + service + '. Is it running, and is ' +
        location.origin + ' listed in its CORS_ORIGINS?');
      err.network = true;
      throw err;
    }
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      let text = (data.code || 'HTTP ' + res.status) + ': ' + (data.message || res.statusText);
      if (data.code === 'RETURN_URL_NOT_ALLOWED') text += ' (add ' + location.origin + " to the service's KYC_RETURN_URL_ORIGINS)";
      const err = new Error(text);
      err.status = res.status;
      err.code = data.code;
      throw err;
    }
    return data;
  }

  // The shape of what the Alibaba web SDK's getMetaInfo() returns (Alibaba's example); the
  // bioMetaInfo is a placeholder (no SDK here), the user agent is this browser's.
  function getMetaInfo() {
    return JSON.stringify({
      bioMetaInfo: '4.1.0:2916352,0',
      deviceType: 'web',
      ua: navigator.userAgent,
    });
  }

  function newMerchantBizId() {
    const bytes = crypto.getRandomValues(new Uint8Array(10));
    return 'demo' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function renderSignedIn() {
    const session = store.get('session');
    $('signin').hidden = !!session;
    $('account').hidden = !session;
    $('who').textContent = session ? session.user : '';
  }

  function renderVerification(current, status) {
    $('verification').hidden = !current;
    if (!current) return;
    $('biz-id').textContent = current.merchantBizId;
    $('tx-id').textContent = current.transactionId || '…';
    const state = status ? status.status : 'checking';
    $('status').textContent = state;
    $('status').dataset.status = state;
    $('outcome').textContent = status && status.passed ? 'passed=' + status.passed + ', subCode=' + (status.subCode || '-') : '-';
    $('attempts').textContent = status && status.attempts ? status.attempts + ' of ' + status.maxAttempts : '-';
    const url = current.transactionUrl;
    const open = !!url && /^https?:\\/\\//i.test(url) && (!status || status.status === 'pending');
    $('open').hidden = !open;
    $('open-note').hidden = !open;
    if (open) $('open').href = url;
    else $('open').removeAttribute('href');
    // A link works once: a reload, a lost tab or a failed camera needs a new one, while the session has no
    // outcome and attempts are left (the service refuses otherwise).
    const resumable = !!status && RESUMABLE.includes(status.status) && status.attempts < status.maxAttempts;
    $('resume').hidden = !resumable;
  }

  function stopPolling() {
    clearTimeout(pollTimer);
    if (pollAbort) pollAbort.abort();
    pollFor = undefined;
  }

  // Follows the status until it is final, with long polls: each request names the status shown
  // (?status=) and the service answers as soon as it differs, or after WAIT_S seconds unchanged;
  // then the page asks again at once. A change shows within milliseconds, with one request per
  // change or per WAIT_S seconds (and a second between tries after an error).
  function poll(current) {
    stopPolling();
    pollFor = current.merchantBizId;
    let known;
    const tick = async () => {
      if (pollFor !== current.merchantBizId) return;
      pollAbort = new AbortController();
      try {
        const query = known ? '?wait=' + WAIT_S + '&status=' + encodeURIComponent(known) : '';
        const status = await callService('GET', '/kyc/sessions/' + encodeURIComponent(current.merchantBizId) + query, undefined, pollAbort.signal);
        if (pollFor !== current.merchantBizId) return;
        setError('');
        known = status.status;
        if (status.transactionId) current.transactionId = status.transactionId;
        renderVerification(current, status);
        if (FINAL.includes(status.status)) {
          stopPolling();
          return;
        }
        pollTimer = setTimeout(tick, 0);
        return;
      } catch (err) {
        if (pollFor !== current.merchantBizId) return;
        setError(err.message);
        if (!err.network && err.status !== 429 && !(err.status >= 500)) {
          stopPolling();
          return;
        }
      }
      pollTimer = setTimeout(tick, 1000);
    };
    tick();
  }

  async function startVerification() {
    setError('');
    $('start').disabled = true;
    try {
      const merchantBizId = newMerchantBizId();
      const returnUrl = location.origin + location.pathname + '?merchantBizId=' + merchantBizId;
      const metaInfo = getMetaInfo();
      $('meta').textContent = metaInfo;
      const started = await callService('POST', '/kyc/start', { merchantBizId, metaInfo, returnUrl });
      const current = {
        merchantBizId: started.merchantBizId,
        transactionId: started.transactionId,
        transactionUrl: started.transactionUrl,
      };
      store.set('current', current);
      renderVerification(current, { status: 'pending' });
      poll(current);
    } catch (err) {
      setError(err.message);
    } finally {
      $('start').disabled = false;
    }
  }

  // A new transaction for the same session: POST /kyc/sessions/{merchantBizId}/resume, the same fields as a start.
  async function resumeVerification() {
    setError('');
    $('resume').disabled = true;
    try {
      const current = store.get('current');
      if (!current) return;
      const returnUrl = location.origin + location.pathname + '?merchantBizId=' + current.merchantBizId;
      const resumed = await callService('POST', '/kyc/sessions/' + encodeURIComponent(current.merchantBizId) + '/resume', {
        metaInfo: getMetaInfo(),
        returnUrl,
      });
      current.transactionId = resumed.transactionId;
      current.transactionUrl = resumed.transactionUrl;
      store.set('current', current);
      renderVerification(current, { status: 'pending', attempts: resumed.attempt, maxAttempts: resumed.attempt });
      poll(current);
    } catch (err) {
      setError(err.message);
    } finally {
      $('resume').disabled = false;
    }
  }

  $('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    setError('');
    try {
      await signIn($('user').value.trim());
      renderSignedIn();
    } catch (err) {
      setError(err.message);
    }
  });
  $('signout').addEventListener('click', () => {
    stopPolling();
    store.remove('session');
    store.remove('current');
    setError('');
    renderSignedIn();
    renderVerification(null);
  });
  $('start').addEventListener('click', startVerification);
  $('resume').addEventListener('click', resumeVerification);

  // Back from the verification page: ReturnUrl carries our merchantBizId (the simulator adds transactionId).
  const query = new URLSearchParams(location.search);
  const returned = query.get('merchantBizId');
  let current = store.get('current');
  if (returned && BIZ_ID.test(returned) && (!current || current.merchantBizId !== returned)) {
    current = { merchantBizId: returned, transactionId: query.get('transactionId') || undefined };
    store.set('current', current);
  }
  $('service').textContent = service;
  $('meta').textContent = getMetaInfo();
  $('ttl').textContent = String(Math.round(config.tokenTtlSeconds / 60));
  renderSignedIn();
  if (current && store.get('session')) {
    renderVerification(current);
    poll(current);
  } else if (current) {
    setError('Sign in as the same test user to see the status of ' + current.merchantBizId + '.');
  }
})();`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
const SCRIPT_HASH = sha256(SCRIPT);
const STYLE_HASH = sha256(STYLE);

/** The page's CSP: only its own script and style, fetches to itself and to the service. */
export function demoSecurityPolicy(serviceUrl: string): string {
  return [
    "default-src 'none'",
    `script-src ${SCRIPT_HASH}`,
    `style-src ${STYLE_HASH}`,
    `connect-src 'self' ${new URL(serviceUrl).origin}`,
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
  ].join('; ');
}

/** JSON for a `<script type="application/json">` block: nothing in it can close the element. */
function jsonForHtml(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function renderDemoPage(settings: DemoPageSettings): string {
  const config = jsonForHtml({ serviceUrl: settings.serviceUrl, tokenTtlSeconds: settings.tokenTtlSeconds });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>kyc-gateway demo</title><style>${STYLE}</style></head>
<body>
<h1>kyc-gateway demo</h1>
<p class="note">A merchant page in miniature: sign in as a test user, start a verification at the service, complete it
on the simulated Alibaba page, and watch its status. Service: <code id="service"></code></p>

<section id="signin"><h2>1. Sign in</h2>
<form id="signin-form"><label for="user">Test user name (letters, digits, <code>. _ @ -</code>)</label>
<input id="user" name="user" value="alice" required maxlength="64" pattern="[A-Za-z0-9._@\\-]{1,64}" autocomplete="off">
<button type="submit" id="signin-button">Sign in as a test user</button></form></section>

<section id="account" hidden><h2>2. Verify</h2>
<p>Signed in as <strong id="who"></strong> (a caller JWT valid for <span id="ttl"></span> minutes).</p>
<button type="button" id="start">Start verification</button>
<button type="button" id="signout" class="secondary">Sign out</button>
<details><summary class="note">metaInfo sent (the web SDK's getMetaInfo() shape)</summary><pre id="meta"></pre></details>
</section>

<section id="verification" hidden><h2>3. Verification</h2>
<dl><dt>merchantBizId</dt><dd id="biz-id"></dd><dt>transactionId</dt><dd id="tx-id"></dd>
<dt>Status</dt><dd><span id="status" class="status" data-status="checking" role="status" aria-live="polite">checking</span></dd>
<dt>Outcome</dt><dd id="outcome">-</dd><dt>Attempts</dt><dd id="attempts">-</dd></dl>
<a id="open" class="button" hidden>Open the verification page</a>
<button type="button" id="resume" class="secondary" hidden>Get a new link</button>
<p id="open-note" class="note" hidden>There, press Pass or Fail: you come back here and the status updates (each
status request waits for the next change: a long poll). The link works once: if the page was closed or failed,
get a new link.</p>
</section>

<pre id="error" class="error" role="alert" hidden></pre>
<p class="note">Local simulator only: the sign-in above mints tokens for any name.</p>
<script type="application/json" id="demo-config">${config}</script>
<script>${SCRIPT}</script>
</body></html>`;
}
