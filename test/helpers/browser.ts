import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium; `npm test` installs it when missing (scripts/ensure-chromium.sh). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Headless Chromium with every feature that reaches for the internet turned off: this
 * machine has no internet, and the page must not need it. Playwright gives each launch
 * a fresh, empty profile directory.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install it with "apt-get install -y chromium" (npm test does this itself when it may)`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Where tests leave screenshots: CUTOUT_TEST_ARTIFACTS_DIR, else test-artifacts/ (ignored by git). */
export function artifactPath(name: string): string {
  const dir = process.env.CUTOUT_TEST_ARTIFACTS_DIR ?? join(process.cwd(), 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
