/**
 * End to end in a real browser: the simulator's demo page (/demo) → the service's POST /kyc/start →
 * the simulator's verification page (Pass/Fail) → back to the demo page, which follows
 * GET /kyc/sessions/:merchantBizId with long polls. The simulator and the service listen on 127.0.0.1 only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { userRef } from '../src/auth/user-ref.js';
import { buildSimulator } from '../src/simulator/server.js';
import { rowsOf } from './helpers/rows.js';
import { artifactPath, chromiumMissing, launchBrowser, watchPage, type PageWatch } from './helpers/browser.js';
import { clientFor } from './helpers/client.js';
import { signToken, TEST_JWT_SECRET } from './helpers/jwt.js';
import { randomId, SIM_KEY_ID, SIM_KEY_SECRET, startStack, type Stack } from './helpers/stack.js';

/**
 * Waits until the demo page shows this status (its long polls answer when the status changes). On a timeout
 * the error names what the page showed instead: its status and its error line.
 */
async function statusIs(page: Page, status: string, timeout = 15_000): Promise<void> {
  try {
    await page.locator(`#status[data-status="${status}"]`).waitFor({ timeout });
  } catch (err) {
    const read = <T>(p: Promise<T>) => p.catch(() => null);
    const shown = {
      status: await read(page.locator('#status').getAttribute('data-status', { timeout: 1000 })),
      error: await read(page.locator('#error').textContent({ timeout: 1000 })),
    };
    throw new Error(`the page did not show ${status} within ${timeout} ms; it showed ${JSON.stringify(shown)}`, { cause: err });
  }
}

interface Verification {
  user: string;
  merchantBizId: string;
  transactionId: string;
  watch: PageWatch;
}

/** Signs in on the demo page, starts a verification and completes it on the simulator's page. */
async function verifyInBrowser(page: Page, stack: Stack, choice: 'Pass' | 'Fail'): Promise<Verification> {
  const watch = watchPage(page);
  const user = randomId('e2e');

  await page.goto(`${stack.simUrl}/demo`);
  assert.equal(await page.locator('#service').textContent(), stack.appUrl, 'the page script ran');
  await page.locator('#user').fill(user);
  await page.getByRole('button', { name: 'Sign in as a test user' }).click();
  await page.locator('#account').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#who').textContent(), user);

  await page.getByRole('button', { name: 'Start verification' }).click();
  await statusIs(page, 'pending');
  const merchantBizId = (await page.locator('#biz-id').textContent()) ?? '';
  const transactionId = (await page.locator('#tx-id').textContent()) ?? '';
  assert.match(merchantBizId, /^demo[0-9a-f]{20}$/);
  assert.ok(transactionId.length > 0);
  const link = page.getByRole('link', { name: 'Open the verification page' });
  assert.equal(await link.getAttribute('href'), `${stack.simUrl}/verify/${transactionId}`);

  // Still pending a while later: nothing has completed it yet.
  await page.waitForTimeout(1500);
  assert.equal(await page.locator('#status').textContent(), 'pending');

  await link.click();
  await page.waitForURL(`${stack.simUrl}/verify/${transactionId}`);
  await page.getByRole('button', { name: choice }).click();

  // The simulator redirects to ReturnUrl with the transactionId added.
  await page.waitForURL((url) => url.pathname === '/demo' && url.searchParams.get('transactionId') === transactionId);
  assert.equal(new URL(page.url()).searchParams.get('merchantBizId'), merchantBizId);
  return { user, merchantBizId, transactionId, watch };
}

/** The outcome as the service's API, its database and the simulator see it. */
async function assertRecorded(stack: Stack, v: Verification, status: 'passed' | 'failed') {
  const api = clientFor(stack);
  const session = await api.session(await signToken(v.user), v.merchantBizId);
  const body = session.body as { status?: string; passed?: string; transactionId?: string };
  assert.equal(session.status, 200);
  assert.equal(body.status, status);
  assert.equal(body.passed, status === 'passed' ? 'Y' : 'N');
  assert.equal(body.transactionId, v.transactionId);

  const row = await rowsOf(stack.app).session(v.merchantBizId);
  assert.equal(row.status, status);
  assert.equal(row.passed, status === 'passed' ? 'Y' : 'N');
  assert.equal(row.transactionId, v.transactionId);
  assert.equal(row.userRef, userRef(stack.config.USER_ID_HASH_SECRET, v.user));
  assert.ok(row.completedAt);

  const sim = await api.sim.transaction(v.transactionId);
  assert.equal(sim.status, 200);
  assert.deepEqual(sim.body.deliveries.map((d) => d.status), [200]);
  assert.equal(sim.body.params.ReturnUrl, `${stack.simUrl}/demo?merchantBizId=${v.merchantBizId}`);
  const meta = JSON.parse(sim.body.params.MetaInfo ?? '{}') as Record<string, unknown>;
  // The web SDK's getMetaInfo() shape: {bioMetaInfo, deviceType: "web", ua}.
  assert.equal(meta.deviceType, 'web');
  assert.match(String(meta.ua), /Mozilla\//);
  assert.equal(typeof meta.bioMetaInfo, 'string');
}

function assertCleanRun(watch: PageWatch) {
  assert.deepEqual(watch.errors, [], 'no console errors, CSP violations or uncaught exceptions');
  const elsewhere = watch.requests.filter((url) => !url.startsWith('http://127.0.0.1:'));
  assert.deepEqual(elsewhere, [], 'every request stays on 127.0.0.1');
}

describe('demo page in Chromium', { skip: chromiumMissing }, () => {
  let stack: Stack;
  let browser: Browser;

  before(async () => {
    stack = await startStack({ demo: true });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  test('sign in, start, Pass on the simulator page, back to the demo page: passed', { timeout: 60_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 760 } });
    try {
      const page = await context.newPage();
      const v = await verifyInBrowser(page, stack, 'Pass');

      await statusIs(page, 'passed');
      assert.equal(await page.locator('#status').textContent(), 'passed');
      assert.equal(await page.locator('#outcome').textContent(), 'passed=Y, subCode=200');
      assert.equal(await page.locator('#biz-id').textContent(), v.merchantBizId);
      assert.equal(await page.locator('#tx-id').textContent(), v.transactionId);
      assert.equal(await page.locator('#open').isVisible(), false, 'a used transaction is not offered again');
      assert.equal(await page.locator('#error').isVisible(), false);
      await page.screenshot({ path: await artifactPath('e2e-passed.png'), fullPage: true });

      await assertRecorded(stack, v, 'passed');
      assertCleanRun(v.watch);
      const reads = v.watch.requests.filter((url) => url.startsWith(`${stack.appUrl}/kyc/sessions/${v.merchantBizId}`));
      assert.ok(reads.includes(`${stack.appUrl}/kyc/sessions/${v.merchantBizId}`), 'the page read the status');
      assert.ok(
        reads.some((url) => /\?wait=\d+&status=pending$/.test(url)),
        `the page waited for the status to change from pending (a long poll): ${reads.join(', ')}`,
      );
    } finally {
      await context.close();
    }
  });

  test('a link used once, then "Get a new link": the second transaction decides, attempts 2 of 3', { timeout: 60_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 760 } });
    try {
      const page = await context.newPage();
      const watch = watchPage(page);
      const user = randomId('e2e');
      await page.goto(`${stack.simUrl}/demo`);
      await page.locator('#user').fill(user);
      await page.getByRole('button', { name: 'Sign in as a test user' }).click();
      await page.getByRole('button', { name: 'Start verification' }).click();
      await statusIs(page, 'pending');
      await page.locator('#attempts').filter({ hasText: '1 of 3' }).waitFor();
      const merchantBizId = (await page.locator('#biz-id').textContent()) ?? '';
      const first = (await page.locator('#tx-id').textContent()) ?? '';

      // The user opens the link, then loses the tab: back on the demo page, the link is spent.
      await page.getByRole('link', { name: 'Open the verification page' }).click();
      await page.waitForURL(`${stack.simUrl}/verify/${first}`);
      await page.goBack();
      await statusIs(page, 'pending');
      const reopened = await fetch(`${stack.simUrl}/verify/${first}`);
      assert.equal(reopened.status, 409, 'Alibaba shows an error page for a second open');

      await page.getByRole('button', { name: 'Get a new link' }).click();
      await page.locator('#attempts').filter({ hasText: '2 of 3' }).waitFor();
      const second = (await page.locator('#tx-id').textContent()) ?? '';
      assert.ok(second && second !== first, 'a new transaction');
      const link = page.getByRole('link', { name: 'Open the verification page' });
      assert.equal(await link.getAttribute('href'), `${stack.simUrl}/verify/${second}`);
      await link.click();
      await page.getByRole('button', { name: 'Pass' }).click();
      await page.waitForURL((url) => url.pathname === '/demo' && url.searchParams.get('transactionId') === second);
      await statusIs(page, 'passed');
      assert.equal(await page.locator('#resume').isVisible(), false, 'no new link once decided');
      await page.screenshot({ path: await artifactPath('e2e-resumed.png'), fullPage: true });

      const session = await clientFor(stack).session(await signToken(user), merchantBizId);
      assert.deepEqual([session.body.status, session.body.transactionId, session.body.attempts], ['passed', second, 2]);
      assertCleanRun(watch);
    } finally {
      await context.close();
    }
  });

  test('Fail on the simulator page: the demo page shows failed', { timeout: 60_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 760 } });
    try {
      const page = await context.newPage();
      const v = await verifyInBrowser(page, stack, 'Fail');
      await statusIs(page, 'failed');
      await page.screenshot({ path: await artifactPath('e2e-failed.png'), fullPage: true });
      await assertRecorded(stack, v, 'failed');
      assertCleanRun(v.watch);
    } finally {
      await context.close();
    }
  });
});

describe('demo page in Chromium, misconfigured service', { skip: chromiumMissing }, () => {
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => browser?.close());

  const startError = async (env: Record<string, string>) => {
    const stack = await startStack({ demo: true, env });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${stack.simUrl}/demo`);
      await page.getByRole('button', { name: 'Sign in as a test user' }).click();
      await page.getByRole('button', { name: 'Start verification' }).click();
      await page.locator('#error').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#verification').isVisible(), false);
      return { text: (await page.locator('#error').textContent()) ?? '', simUrl: stack.simUrl };
    } finally {
      await context.close();
      await stack.close();
    }
  };

  test('the page names the setting to fix', { timeout: 60_000 }, async () => {
    const noCors = await startError({ CORS_ORIGINS: '' });
    assert.match(noCors.text, /^Could not reach the service at http:\/\/127\.0\.0\.1:\d+\. .*CORS_ORIGINS/);
    assert.ok(noCors.text.includes(noCors.simUrl));

    const noReturn = await startError({ KYC_RETURN_URL_ORIGINS: 'https://shop.example' });
    assert.match(noReturn.text, /^RETURN_URL_NOT_ALLOWED: .*KYC_RETURN_URL_ORIGINS/);
    assert.ok(noReturn.text.includes(noReturn.simUrl));
  });
});

describe('demo endpoints', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ demo: true });
  });
  after(async () => stack?.close());

  test('GET /demo: self-contained HTML under a strict CSP naming the service origin', async () => {
    const res = await fetch(`${stack.simUrl}/demo`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'(;|$)/);
    assert.ok(csp.includes(`connect-src 'self' ${stack.appUrl}`), csp);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await res.text();
    assert.doesNotMatch(html, /\b(src|href)="https?:/, 'no external assets');
    assert.ok(html.includes(JSON.stringify(stack.appUrl)), 'the page knows the service URL');
  });

  test('POST /demo/token mints a short-lived token the service accepts', async () => {
    const user = randomId('tok');
    const res = await fetch(`${stack.simUrl}/demo/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { user: string; token: string; expiresAt: string };
    assert.equal(body.user, user);
    const ttl = Date.parse(body.expiresAt) - Date.now();
    assert.ok(ttl > 0 && ttl <= 10 * 60_000, `expires in ${ttl} ms`);
    const started = await clientFor(stack).start(body.token);
    assert.equal(started.status, 201);
  });

  test('POST /demo/token refuses a bad user name', async () => {
    for (const user of ['', 'a b', 'x'.repeat(65), '<script>']) {
      const res = await fetch(`${stack.simUrl}/demo/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user }),
      });
      assert.equal(res.status, 400, user);
    }
  });

  test('CORS: the service answers the preflight for the simulator origin only', async () => {
    const preflight = (origin: string) =>
      fetch(`${stack.appUrl}/kyc/start`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      });
    const ok = await preflight(stack.simUrl);
    assert.equal(ok.headers.get('access-control-allow-origin'), stack.simUrl);
    const other = await preflight('http://127.0.0.1:1');
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  test('without demo options the simulator has no /demo', async () => {
    const sim = await buildSimulator({ accessKeys: { [SIM_KEY_ID]: SIM_KEY_SECRET } });
    try {
      const url = await sim.listen(0, '127.0.0.1');
      assert.equal((await fetch(`${url}/demo`)).status, 404);
      const token = await fetch(`${url}/demo/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'alice' }),
      });
      assert.equal(token.status, 404);
    } finally {
      await sim.close();
    }
  });

  test('a demo option without a secret is refused at build time', async () => {
    await assert.rejects(buildSimulator({ accessKeys: {}, demo: { jwtSecret: '', serviceUrl: 'http://127.0.0.1:3000' } }));
    await assert.rejects(buildSimulator({ accessKeys: {}, demo: { jwtSecret: TEST_JWT_SECRET, serviceUrl: 'ftp://x' } }));
  });
});
