// Debian's Chromium as the browser tests start it (never a downloaded browser).
import { chromium } from 'playwright-core';

/** Headless, from a fresh temporary profile (--user-data-dir) that close() removes, with background traffic off. */
export const launchChromium = (executablePath) => chromium.launch({
    executablePath: executablePath ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
