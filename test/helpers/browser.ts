// Debian's chromium driven by playwright-core for the console's browser tests:
// no browser download, headless, no network beyond what the page asks for
// (loopback only in these tests), a fresh profile per launch (playwright's
// launch() makes and removes its own user-data dir), closed when the test ends.
import type { Test } from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';

// The waitForFunction callback runs in the browser; the project compiles without the DOM lib.
declare const document: { querySelector(selector: string): { textContent: string | null } | null };

export const chromiumPath = '/usr/bin/chromium';

export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser(t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true, timeout: 30_000 });
  t.teardown(() => browser.close());
  return browser;
}

/** Resolves once the text of the first element matching `selector` matches `pattern`; rejects after timeoutMs. */
export async function waitForText(page: Page, selector: string, pattern: RegExp, timeoutMs = 5000): Promise<void> {
  try {
    await page.waitForFunction(
      ([sel, source, flags]) => new RegExp(source, flags).test(document.querySelector(sel)?.textContent ?? ''),
      [selector, pattern.source, pattern.flags] as const,
      { timeout: timeoutMs, polling: 50 },
    );
  } catch (e) {
    const now = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => null);
    throw new Error(`${selector} did not match ${pattern} within ${timeoutMs}ms; it reads: ${JSON.stringify(now)}`, { cause: e });
  }
}
