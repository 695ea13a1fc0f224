import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { type BrowserContext, chromium } from "playwright-core";
import { tempDir } from "./temp-dir.ts";

export const CHROMIUM = process.env.BIOAPI_CHROMIUM ?? "/usr/bin/chromium";

/** Where screenshots stay after the test (the temp dirs of the test itself are removed). */
export async function screenshotDir(): Promise<string> {
  const dir = process.env.BIOAPI_SCREENSHOT_DIR ?? join(tmpdir(), "bioapi-screenshots");
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Debian's headless Chromium driven by playwright-core (no browser download). Absent Chromium skips the test with a
 * loud notice on a developer machine, and fails it under CI=true, where .ci/run installs it.
 */
export async function chromiumBrowser(t: TestContext): Promise<(BrowserContext & AsyncDisposable) | undefined> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === "true")
      throw new Error(`${CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)`);
    process.stderr.write(
      `\n*** SKIPPED browser test "${t.name}": ${CHROMIUM} is missing (apt-get install -y chromium) ***\n`,
    );
    t.skip(`${CHROMIUM} missing`);
    return undefined;
  }
  const profile = await tempDir("bioapi-chromium-");
  // A fresh profile per test: playwright passes it as --user-data-dir (it refuses that flag in args).
  const browser = await chromium.launchPersistentContext(profile.path, {
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return Object.assign(browser, {
    [Symbol.asyncDispose]: async () => {
      await browser.close();
      await profile[Symbol.asyncDispose]();
    },
  });
}
