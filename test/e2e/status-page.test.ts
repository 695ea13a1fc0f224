import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import type { ConnectorStatus, StatusEndpointFile } from "../../src/status/status-api.ts";
import { chromiumBrowser, screenshotDir } from "../helpers/browser.ts";
import { BIN, ConnectorProcess } from "../helpers/connector-process.ts";
import { e2e, fastConfig } from "../helpers/e2e-harness.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { terminal } from "../helpers/zk-harness.ts";

const run = promisify(execFile);
const COMM_KEY = 738192;
const DB_PASSWORD = "pg-Pass-w0rd-never-shown";

/** The node secret as it could leak: as is, and in the encodings a careless log line would use. */
function spellings(secret: string): string[] {
  const raw = Buffer.from(secret, "base64url");
  return [secret, raw.toString("hex"), raw.toString("base64"), encodeURIComponent(secret)];
}

test("status page in Chromium matches the status API; cloud nodes page; no secret in logs, API, page, metrics or heartbeat", async (t) => {
  await using browser = await chromiumBrowser(t);
  if (!browser) return;
  // 90 s fast: above the default 60 s limit, so the page must say so.
  await using sim = await terminal({ records: 1500, commKey: COMM_KEY, clockOffsetMs: 90_000, serial: "CKJ-PAGE-1" });
  await using h = await e2e({
    config: (dbPath) => {
      const base = fastConfig(dbPath);
      return {
        ...base,
        sources: [
          ...base.sources,
          {
            id: "gate",
            kind: "zk",
            host: sim.host,
            port: sim.port,
            commKey: COMM_KEY,
            pollIntervalMs: 200,
            requestTimeoutMs: 1000,
            timezone: "Asia/Kolkata",
          },
          {
            // A real server, a table that is not there: the page must show the error in words, never the password.
            id: "payroll",
            kind: "database",
            preset: "biotime",
            pollIntervalMs: 500,
            connection: {
              engine: "postgres",
              host: "127.0.0.1",
              port: 5432,
              database: "test",
              user: "postgres",
              password: DB_PASSWORD,
              connectTimeoutMs: 2000,
            },
            table: "no_such_attendance_table",
          },
        ],
      };
    },
  });
  h.db.insertMany(40, ["S1"]);
  const logDir = join(h.dir, "logs");
  await using p = await ConnectorProcess.started(h.connectorDir, ["--log-dir", logDir]);
  try {
    await waitFor("every punch in the cloud", () => h.cloud.stats(h.nodeId).total === 1540, 60_000);
    await waitFor("the heartbeat carries the payroll error", () => {
      const hb = h.cloud.lastStatus(h.nodeId) as { sources?: Array<{ id: string; lastError: unknown }> } | undefined;
      return hb?.sources?.find((s) => s.id === "payroll")?.lastError;
    });

    // The endpoint file is the connector's account's only, and `bioapi status --url` reads it.
    const statusFile = join(h.connectorDir, "status.json");
    assert.equal(statSync(statusFile).mode & 0o777, 0o600);
    const endpoint = JSON.parse(readFileSync(statusFile, "utf8")) as StatusEndpointFile;
    const { stdout: urlOut } = await run(process.execPath, [BIN, "status", "--data-dir", h.connectorDir, "--url"]);
    const pageUrl = urlOut.trim();
    assert.equal(pageUrl, `${endpoint.url}/?token=${endpoint.token}`);
    const api = async () =>
      (await (
        await fetch(`${endpoint.url}/v1/status`, { headers: { authorization: `Bearer ${endpoint.token}` } })
      ).json()) as ConnectorStatus;

    const page = await browser.newPage();
    const external: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(endpoint.url)) external.push(r.url());
    });
    await page.goto(pageUrl);
    assert.equal(page.url(), `${endpoint.url}/`, "the token left the address bar");
    const cookies = await browser.cookies(endpoint.url);
    assert.equal(cookies.length, 1);
    assert.notEqual(cookies[0]?.value, endpoint.token, "the page's cookie is a session, not the bearer token");
    await page.waitForSelector("body[data-loaded=true]", { timeout: 10_000 });
    // Wait for a render of the settled state: the drift and the error are reported after the first polls.
    await page.waitForFunction(
      `document.querySelector('tr[data-source="payroll"] [data-k="error"]')?.textContent?.includes("DB_SCHEMA")`,
      undefined,
      { timeout: 15_000 },
    );
    // Compare with the very document the page rendered (states change between polls: payroll flips between
    // running and backoff): take its next /v1/status response, let it render, then read the DOM within the 2 s.
    const response = await page.waitForResponse((r) => r.url() === `${endpoint.url}/v1/status`, { timeout: 5000 });
    const s = (await response.json()) as ConnectorStatus;
    // Rendered from that response, however late a busy machine runs the page's script (a fixed 150 ms was a guess).
    const rows = s.sources.map((w) => [w.sourceId, w.state, String(w.emitted), w.lastPunchTime ?? "-"]);
    await page.waitForFunction(
      `${JSON.stringify(rows)}.every(([id, ...want]) => ["state", "emitted", "last-punch"].every((k, i) =>
        document.querySelector('tr[data-source="' + id + '"] [data-k="' + k + '"]')?.textContent?.trim() === want[i]))`,
      undefined,
      { timeout: 5000 },
    );
    const text = async (sel: string) => ((await page.textContent(sel)) ?? "").trim();
    assert.equal(await text('[data-k="node"]'), s.nodeId);
    assert.equal(await text('[data-k="config-version"]'), String(s.config.version));
    assert.equal(await text('[data-k="connectivity"]'), s.connectivity.state);
    assert.equal(await text('[data-k="outbox-depth"]'), String(s.outbox.depth));
    for (const w of s.sources) {
      const row = `tr[data-source="${w.sourceId}"]`;
      assert.equal(await text(`${row} [data-k="state"]`), w.state, `${w.sourceId} state`);
      assert.equal(await text(`${row} [data-k="emitted"]`), String(w.emitted), `${w.sourceId} emitted`);
      assert.equal(await text(`${row} [data-k="last-punch"]`), w.lastPunchTime ?? "-", `${w.sourceId} last punch`);
    }
    const gate = s.sources.find((w) => w.sourceId === "gate");
    assert.ok(gate?.device?.clockDriftMs !== undefined && Math.abs(gate.device.clockDriftMs - 90_000) < 3000);
    assert.match(await text('tr[data-source="gate"] [data-k="drift"]'), /^\+(89|90|91) s$/, "1 s resolution");
    assert.equal(await text('tr[data-source="gate"] [data-k="cursor"]'), "CKJ-PAGE-1=#1500");
    assert.match(await text('tr[data-source="payroll"] [data-k="error"]'), /DB_SCHEMA: .*no_such_attendance_table/);
    // payroll's item shows while it backs off, not in the moment it retries (state "running"), which the snapshot
    // above may have caught: wait for a render that has it.
    await page.waitForFunction(
      `[...document.querySelectorAll("#attention .att")].some((a) => /payroll: DB_SCHEMA/.test(a.textContent))`,
      undefined,
      { timeout: 15_000 },
    );
    const attention = await page.locator("#attention .att").allTextContents();
    assert.ok(
      attention.some((a) => /gate: .*clock is (89|90|91) s ahead/.test(a)),
      attention.join("\n"),
    );
    assert.ok(
      attention.some((a) => /payroll: DB_SCHEMA/.test(a)),
      attention.join("\n"),
    );
    assert.equal(await page.locator("#chart rect").count(), 60, "one bar per minute of the last hour");
    assert.deepEqual(external, [], "the page loads nothing from elsewhere");
    const shots = await screenshotDir();
    const shot = join(shots, "status-page.png");
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
    const pageHtml = await page.content();
    const apiDocument = JSON.stringify(await api());

    // The reference cloud's own page: nodes, sources, last seen and backlog, as the heartbeat reported them.
    const cloudPage = await browser.newPage();
    await cloudPage.goto(`${h.cloud.url}/nodes`);
    const hb = h.cloud.lastStatus(h.nodeId) as { outbox: { depth: number }; version: string };
    const node = `tr.node[data-node="${h.nodeId}"]`;
    assert.equal(
      ((await cloudPage.textContent(`${node} [data-k="outbox-depth"]`)) ?? "").trim(),
      String(hb.outbox.depth),
    );
    assert.equal(((await cloudPage.textContent(`${node} [data-k="version"]`)) ?? "").trim(), hb.version);
    assert.equal(((await cloudPage.textContent(`${node} [data-k="punches"]`)) ?? "").trim(), "1540");
    assert.match((await cloudPage.textContent(`${node} [data-k="last-seen"]`)) ?? "", /s ago/);
    assert.equal(await cloudPage.locator(`tr.src[data-node="${h.nodeId}"]`).count(), 3);
    assert.match((await cloudPage.textContent(`tr.src[data-source="payroll"] [data-k="error"]`)) ?? "", /DB_SCHEMA/);
    const cloudShot = join(shots, "cloud-nodes-page.png");
    await cloudPage.screenshot({ path: cloudShot, fullPage: true });
    t.diagnostic(`screenshot: ${cloudShot}`);

    const metrics = await (
      await fetch(`${endpoint.url}/metrics`, { headers: { authorization: `Bearer ${endpoint.token}` } })
    ).text();
    const families = parsePrometheusTextFormat(metrics);
    const delivered = families.find((f) => f.name === "bioapi_source_delivered_total")?.metrics ?? [];
    assert.equal(
      delivered.reduce((sum, m) => sum + Number(m.value), 0),
      1540,
    );
    const errors = families.find((f) => f.name === "bioapi_source_errors_total")?.metrics ?? [];
    assert.ok(errors.some((m) => m.labels?.source === "payroll" && m.labels.code === "DB_SCHEMA"));

    const exit = await p.kill("SIGTERM");
    assert.equal(exit.code, 0);
    const files = readdirSync(logDir);
    assert.ok(files.includes("connector.log"), files.join(","));
    const fileLogs = files.map((f) => readFileSync(join(logDir, f), "utf8")).join("");
    assert.match(fileLogs, /"msg":"Connector started\."/);
    const surfaces: Record<string, string> = {
      "console log": p.output.join(""),
      "log files": fileLogs,
      "status API": apiDocument,
      page: pageHtml,
      metrics,
      heartbeat: JSON.stringify(h.cloud.lastStatus(h.nodeId)),
      "cloud page": await cloudPage.content(),
    };
    const needles = [...spellings(h.secret), DB_PASSWORD];
    for (const [where, body] of Object.entries(surfaces)) {
      for (const n of needles) assert.equal(body.includes(n), false, `a secret in the ${where}`);
      assert.doesNotMatch(body, new RegExp(`\\b${COMM_KEY}\\b`), `the comm key in the ${where}`);
    }
  } finally {
    await p.kill();
  }
});
