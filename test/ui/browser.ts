// Headless Chromium for the console tests: Debian's /usr/bin/chromium driven by playwright-core (no browser download), with every console error and failed request recorded.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's `chromium` package (.ci/run installs it); LANEWAY_CHROMIUM overrides. */
export const CHROMIUM = process.env.LANEWAY_CHROMIUM ?? '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
export const NO_CHROMIUM = `skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, as .ci/run does, or set LANEWAY_CHROMIUM)`;

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** A page whose problems are collected: console errors and warnings, uncaught exceptions, failed requests and requests to other origins. */
export interface WatchedPage {
  readonly page: Page;
  readonly context: BrowserContext;
  readonly problems: string[];
  readonly requests: string[];
}

export async function openPage(browser: Browser, origin: string, options: { viewport?: { width: number; height: number } } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 860 }, permissions: [] });
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console ${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (req) => {
    requests.push(req.url());
    if (!req.url().startsWith(origin) && !req.url().startsWith('data:')) problems.push(`third-party request: ${req.url()}`);
  });
  page.on('requestfailed', (req) => {
    // Streams the page aborts itself on navigation are not failures.
    if (req.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`);
  });
  return { page, context, problems, requests };
}

/** Enters a token in the console's form (it goes to session storage, as a user's would). */
export async function useToken(page: Page, token: string): Promise<void> {
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Use', exact: true }).click();
}
