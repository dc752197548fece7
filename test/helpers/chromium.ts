import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium: the tests and the panel bench never download a browser. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Starts Debian's Chromium headless as the tests and the panel bench need it: as root in a container
 * (no sandbox) and on a machine with a closed network (no background fetches, updates or sync).
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
}
