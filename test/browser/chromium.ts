/**
 * Headless Chromium for the page tests: Debian's /usr/bin/chromium driven by
 * playwright-core (no browser download), with WebGPU on. Without a GPU,
 * Chromium's WebGPU falls back to SwiftShader (a CPU Vulkan implementation),
 * which --enable-unsafe-webgpu allows in headless mode.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = process.env.WGSL_UNET_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--enable-unsafe-webgpu', // WebGPU in headless mode, and its fallback (SwiftShader) adapter where there is no GPU
  '--no-sandbox', // the tests run as root
  // This machine has no network: keep Chromium from trying to reach Google.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
];

export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Launches Chromium with a fresh, empty profile that is removed on close. */
export async function launchChromium(): Promise<Chromium> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium; scripts/setup.sh does), or set WGSL_UNET_CHROMIUM to a Chromium binary`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'wgsl-unet-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1180, height: 900 },
    acceptDownloads: true,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
