import assert from "node:assert/strict";
import { request } from "node:http";
import { test } from "node:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { fakeStatus } from "../../test/helpers/fake-status.ts";
import { silentLogger } from "../core/logger.ts";
import { ConnectorMetrics, MAX_LABELLED_SOURCES, OTHER_SOURCES } from "./metrics.ts";
import type { ConnectorStatus } from "./status-api.ts";
import { SESSION_LIFETIME_MS, StatusServer } from "./status-server.ts";

/** Raw HTTP, so the test controls the Host header (fetch would not let it). */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function serve(status: () => ConnectorStatus, metrics = new ConnectorMetrics({ defaultMetrics: false })) {
  const server = await StatusServer.start({ host: "127.0.0.1", port: 0, status, logger: silentLogger, metrics });
  return Object.assign(server, { [Symbol.asyncDispose]: () => server.close() });
}

test("the page, the status API and /metrics need the token; the URL's token becomes a cookie; Host must be loopback", async () => {
  await using server = await serve(() => fakeStatus(2));
  assert.match(server.token, /^[A-Za-z0-9_-]{43}$/, "256 random bits");
  for (const path of ["/", "/v1/status", "/metrics"]) {
    assert.equal((await get(`${server.url}${path}`)).status, 401, path);
    assert.equal((await get(`${server.url}${path}`, { authorization: `Bearer ${server.token}x` })).status, 401, path);
    assert.equal((await get(`${server.url}${path}`, { authorization: `Bearer ${server.token}` })).status, 200, path);
  }
  assert.equal((await get(`${server.url}/?token=wrong`)).status, 401);
  const redirect = await get(`${server.url}/?token=${server.token}`);
  assert.equal(redirect.status, 303);
  assert.equal(redirect.headers.location, "/", "the token leaves the address bar");
  const cookie = String(redirect.headers["set-cookie"]).split(";")[0] as string;
  assert.match(String(redirect.headers["set-cookie"]), /HttpOnly; SameSite=Strict/);
  assert.equal(String(redirect.headers["set-cookie"]).includes(server.token), false, "the token is never a cookie");
  const page = await get(`${server.url}/`, { cookie });
  assert.equal(page.status, 200);
  assert.match(String(page.headers["content-security-policy"]), /default-src 'none'/);
  assert.doesNotMatch(page.body, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, "no asset from another origin");
  const api = await get(`${server.url}/v1/status`, { cookie });
  assert.equal((JSON.parse(api.body) as ConnectorStatus).sources.length, 2);
  // DNS rebinding: a page at evil.example resolving to 127.0.0.1 sends its own name as Host.
  const rebound = await get(`${server.url}/v1/status`, {
    host: "evil.example",
    authorization: `Bearer ${server.token}`,
  });
  assert.equal(rebound.status, 421);
  await assert.rejects(
    StatusServer.start({ host: "0.0.0.0", port: 0, status: () => fakeStatus(0), logger: silentLogger }),
    /loopback only/,
  );
});

test("/metrics parses as Prometheus text; 500 sources stay within the label bound; the rest sum into _other", async () => {
  const metrics = new ConnectorMetrics({ defaultMetrics: true });
  const status = fakeStatus(500);
  for (const w of status.sources) {
    metrics.read(w.sourceId, 10);
    metrics.emitted(w.sourceId, 9, 1, 1);
    metrics.delivered(new Map([[w.sourceId, 9]]));
    metrics.error(w.sourceId, "DEVICE_UNREACHABLE");
    metrics.error(w.sourceId, `MADE_UP_${w.sourceId}`);
    metrics.pollDuration(w.sourceId, 0.2);
  }
  await using server = await serve(() => status, metrics);
  const res = await get(`${server.url}/metrics`, { authorization: `Bearer ${server.token}` });
  assert.equal(res.status, 200);
  assert.match(String(res.headers["content-type"]), /text\/plain/);
  const families = parsePrometheusTextFormat(res.body);
  const byName = new Map(families.map((f) => [f.name, f]));
  for (const name of [
    "bioapi_source_read_total",
    "bioapi_source_emitted_total",
    "bioapi_source_duplicates_total",
    "bioapi_source_quarantined_total",
    "bioapi_source_delivered_total",
    "bioapi_source_errors_total",
    "bioapi_source_poll_duration_seconds",
    "bioapi_source_lag_seconds",
    "bioapi_source_backlog",
    "bioapi_source_up",
    "bioapi_device_clock_drift_seconds",
    "bioapi_outbox_depth",
    "bioapi_outbox_oldest_age_seconds",
    "bioapi_cloud_up",
    "bioapi_config_version",
    "bioapi_process_resident_memory_bytes",
  ]) {
    assert.ok(byName.has(name), `${name} is exported`);
  }
  const sources = new Set<string>();
  let series = 0;
  for (const f of families) {
    series += f.metrics.length;
    for (const m of f.metrics) if (m.labels?.source) sources.add(m.labels.source);
  }
  assert.equal(sources.size, MAX_LABELLED_SOURCES + 1, "own series for the first sources, one _other for the rest");
  assert.ok(sources.has(OTHER_SOURCES));
  assert.ok(series < 20 * (MAX_LABELLED_SOURCES + 1) + 200, `${series} series in all`);
  const read = byName.get("bioapi_source_read_total")?.metrics ?? [];
  const total = read.reduce((sum, m) => sum + Number(m.value), 0);
  assert.equal(total, 5000, "nothing is lost by aggregating");
  assert.equal(Number(read.find((m) => m.labels?.source === OTHER_SOURCES)?.value), (500 - MAX_LABELLED_SOURCES) * 10);
  const codes = new Set(byName.get("bioapi_source_errors_total")?.metrics.map((m) => m.labels?.code));
  assert.deepEqual([...codes].sort(), ["DEVICE_UNREACHABLE", "INTERNAL"], "unknown codes fold into INTERNAL");
  assert.equal(
    Number(byName.get("bioapi_source_backlog")?.metrics.find((m) => m.labels?.source === "gate-0")?.value),
    60,
  );

  // A source that leaves the config gives its slot and its series back.
  const fewer = { ...status, sources: status.sources.slice(1) };
  metrics.update(fewer, Date.now());
  const after = parsePrometheusTextFormat(await metrics.text());
  const left = after.flatMap((f) => f.metrics.filter((m) => m.labels?.source === "gate-0"));
  assert.deepEqual(left, []);
});

test("the page's cookie is a session of its own: not the token, page and status only, gone when it expires", async () => {
  let now = Date.parse("2026-12-03T09:00:00Z");
  const clock = { now: () => now };
  const server = await StatusServer.start({
    host: "127.0.0.1",
    port: 0,
    status: () => fakeStatus(1),
    logger: silentLogger,
    metrics: new ConnectorMetrics({ defaultMetrics: false }),
    clock,
  });
  await using _ = Object.assign(server, { [Symbol.asyncDispose]: () => server.close() });
  const open = async () => {
    const r = await get(`${server.url}/?token=${server.token}`);
    assert.equal(r.status, 303);
    return String(r.headers["set-cookie"]);
  };
  const setCookie = await open();
  const [pair] = setCookie.split(";") as [string];
  const [name, value] = pair.split("=") as [string, string];
  assert.equal(name, `bioapi_status_${new URL(server.url).port}`);
  assert.match(value, /^[A-Za-z0-9_-]{43}$/, "256 random bits");
  assert.notEqual(value, server.token);
  assert.match(setCookie, /; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/, "12 h");
  assert.notEqual((await open()).split(";")[0], pair, "each opening is a new session");

  // The token as a cookie (what earlier versions set) opens nothing.
  for (const path of ["/", "/v1/status", "/metrics"])
    assert.equal((await get(`${server.url}${path}`, { cookie: `${name}=${server.token}` })).status, 401, path);
  assert.equal((await get(`${server.url}/`, { cookie: pair })).status, 200);
  assert.equal((await get(`${server.url}/v1/status`, { cookie: pair })).status, 200);
  assert.equal((await get(`${server.url}/metrics`, { cookie: pair })).status, 401, "scrapers send the token");

  now += SESSION_LIFETIME_MS - 1;
  assert.equal((await get(`${server.url}/v1/status`, { cookie: pair })).status, 200, "alive until its last ms");
  now += 1;
  const expired = await get(`${server.url}/v1/status`, { cookie: pair });
  assert.equal(expired.status, 401);
  assert.equal((JSON.parse(expired.body) as { error: string }).error, "session_expired");
  assert.match(String(expired.headers["set-cookie"]), /^bioapi_status_\d+=; .*Max-Age=0$/, "the browser drops it");
  const page = await get(`${server.url}/`, { cookie: pair });
  assert.equal(page.status, 401);
  assert.match(page.body, /session expired\. Open the address printed by `bioapi status --url`/);
  // The bearer token is untouched by sessions.
  assert.equal((await get(`${server.url}/v1/status`, { authorization: `Bearer ${server.token}` })).status, 200);
});

test("sessions are bounded: a loop of page opens keeps the newest 64", async () => {
  await using server = await serve(() => fakeStatus(0));
  const cookies: string[] = [];
  for (let i = 0; i < 65; i++)
    cookies.push(
      String((await get(`${server.url}/?token=${server.token}`)).headers["set-cookie"]).split(";")[0] as string,
    );
  assert.equal(
    (await get(`${server.url}/v1/status`, { cookie: cookies[0] as string })).status,
    401,
    "the oldest gave way",
  );
  assert.equal((await get(`${server.url}/v1/status`, { cookie: cookies[1] as string })).status, 200);
  assert.equal((await get(`${server.url}/v1/status`, { cookie: cookies[64] as string })).status, 200);
});
