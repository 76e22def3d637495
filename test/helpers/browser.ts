/** Debian's Chromium driven by playwright-core, for the end-to-end browser tests. */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** A skip reason when the browser is not installed (CI installs it: see .ci/run), else undefined. */
export const chromiumMissing: string | undefined = existsSync(CHROMIUM_PATH)
  ? undefined
  : `${CHROMIUM_PATH} not found: install Debian's chromium (apt-get install chromium) to run the browser tests`;

/** Screenshots and other outputs of the browser tests (gitignored). */
export const ARTIFACTS_DIR = fileURLToPath(new URL('../artifacts/', import.meta.url));

export async function artifactPath(name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  return `${ARTIFACTS_DIR}${name}`;
}

/**
 * Headless Chromium with a throwaway profile (playwright creates and removes a fresh user-data dir)
 * and without the background traffic Chromium starts on its own: only the pages we open go out.
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-quic',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
}

export interface PageWatch {
  /** Console errors and uncaught exceptions (CSP violations show up here). */
  errors: string[];
  /** Every URL the page requested. */
  requests: string[];
}

/** Records what a page does, for assertions after the fact. */
export function watchPage(page: Page): PageWatch {
  const watch: PageWatch = { errors: [], requests: [] };
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // Chromium asks every origin for /favicon.ico; the simulator has none.
    if (message.location().url.endsWith('/favicon.ico')) return;
    watch.errors.push(message.text());
  });
  page.on('pageerror', (error) => watch.errors.push(`uncaught: ${error.message}`));
  page.on('request', (request) => watch.requests.push(request.url()));
  return watch;
}
