import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { silentLogger } from "../../src/core/logger.ts";
import { SESSION_LIFETIME_MS, StatusServer } from "../../src/status/status-server.ts";
import { chromiumBrowser } from "../helpers/browser.ts";
import { fakeStatus } from "../helpers/fake-status.ts";

test("Chromium: the status page's cookie is a session, not the token; another loopback port sees only that; it expires", async (t) => {
  await using browser = await chromiumBrowser(t);
  if (!browser) return;
  // The server's clock decides expiry, so the test moves it instead of waiting 12 h.
  let now = Date.now();
  const server = await StatusServer.start({
    host: "127.0.0.1",
    port: 0,
    status: () => fakeStatus(2),
    logger: silentLogger,
    clock: { now: () => now },
  });
  await using _server = Object.assign(server, { [Symbol.asyncDispose]: () => server.close() });
  // Another user's web server on the same machine: cookies are not isolated by port, so it receives ours.
  const heard: string[] = [];
  const other = createServer((req, res) => {
    heard.push(req.headers.cookie ?? "");
    res.writeHead(200, { "content-type": "text/plain" }).end("someone else's page\n");
  });
  await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
  await using _other = {
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => other.close(() => resolve())),
  };
  const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/`;

  const page = await browser.newPage();
  await page.goto(`${server.url}/?token=${server.token}`);
  assert.equal(page.url(), `${server.url}/`, "the token left the address bar");
  await page.waitForSelector("body[data-loaded=true]", { timeout: 10_000 });

  const [cookie, ...more] = await browser.cookies(server.url);
  assert.ok(cookie, "the page set a cookie");
  assert.deepEqual(more, []);
  assert.equal(cookie.name, `bioapi_status_${new URL(server.url).port}`);
  assert.notEqual(cookie.value, server.token, "the cookie is not the bearer token");
  assert.match(cookie.value, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(cookie.path, "/");
  const lifetime = cookie.expires - Date.now() / 1000;
  assert.ok(Math.abs(lifetime - SESSION_LIFETIME_MS / 1000) < 600, `expires in ${lifetime} s, about 12 h`);

  // What the other port's server receives: the session, never the token.
  const visitor = await browser.newPage();
  await visitor.goto(otherUrl);
  assert.equal(heard.length > 0, true);
  assert.ok(
    heard.some((h) => h.includes(`${cookie.name}=${cookie.value}`)),
    "the finding holds: another port receives the cookie",
  );
  for (const h of heard) assert.equal(h.includes(server.token), false, "the token never reaches another port");
  await visitor.close();

  // The session's end, by the server's clock: the open page stops at its next poll and says what to do.
  now += SESSION_LIFETIME_MS;
  await page.waitForSelector("body[data-expired=true]", { timeout: 15_000 });
  assert.equal(await page.isVisible("#expired"), true);
  assert.match((await page.textContent("#expired")) ?? "", /session expired.*bioapi status --url/s);
  assert.deepEqual(await browser.cookies(server.url), [], "the expired cookie was cleared");
  // A copy of the cookie taken before (as the other port's server could) opens nothing now.
  const replay = await fetch(`${server.url}/v1/status`, { headers: { cookie: `${cookie.name}=${cookie.value}` } });
  assert.equal(replay.status, 401);
  assert.equal(((await replay.json()) as { error: string }).error, "session_expired");
  const reload = await page.reload();
  assert.equal(reload?.status(), 401);
  assert.match((await page.textContent("body")) ?? "", /bioapi status --url/);

  // The token, as bioapi status --url prints it, opens a new session.
  await page.goto(`${server.url}/?token=${server.token}`);
  await page.waitForSelector("body[data-loaded=true]", { timeout: 10_000 });
  const [renewed] = await browser.cookies(server.url);
  assert.ok(renewed && renewed.value !== cookie.value && renewed.value !== server.token);
});
