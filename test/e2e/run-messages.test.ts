import assert from "node:assert/strict";
import { existsSync, watch } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fetchStatus } from "../../src/cli/status-command.ts";
import { ConnectorProcess } from "../helpers/connector-process.ts";
import { e2e } from "../helpers/e2e-harness.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";

test("run without enrollment names the directory it looked in and creates nothing", async () => {
  await using dir = await tempDir();
  const missing = join(dir.path, "not-here");
  const p = new ConnectorProcess(missing);
  const exit = await p.exited;
  assert.equal(exit.code, 1);
  assert.match(p.output.join(""), new RegExp(`Not enrolled: ${missing} does not exist, and run creates nothing`));
  assert.equal(existsSync(missing), false, "run created the directory");

  const empty = join(dir.path, "empty");
  await mkdir(empty);
  const q = new ConnectorProcess(empty);
  assert.equal((await q.exited).code, 1);
  assert.match(q.output.join(""), new RegExp(`Not enrolled: ${empty} holds no enrollment.*bioapi enroll`));
});

test("a stop with undelivered punches says how many wait in the outbox", async () => {
  await using h = await e2e();
  // The cloud answers its health check but refuses every batch: punches pile up in the outbox.
  h.cloud.injectFault({ route: "punches", status: 503, retryAfterSeconds: 60, times: 1_000_000 });
  h.db.insertMany(40, ["S1"]);
  await using p = await ConnectorProcess.started(h.connectorDir);
  await waitFor("40 in the outbox", async () => (await fetchStatus(h.connectorDir)).outbox.depth === 40);
  assert.equal((await p.kill("SIGTERM")).code, 0);
  assert.match(p.output.join(""), /40 punches wait in the outbox; they go out on the next start\./);
});

test("a SIGTERM the moment status.json appears is still a graceful stop: exit 0, status.json removed", async () => {
  await using h = await e2e();
  const statusFile = join(h.connectorDir, "status.json");
  // status.json is written part-way through the start; a stop sent as soon as it is seen (what a service manager
  // or the tests do) once met the default signal action there: death by SIGTERM, status.json left behind.
  for (let i = 0; i < 3; i++) {
    const appeared = new Promise<void>((resolve) => {
      const watcher = watch(h.connectorDir, () => {
        if (!existsSync(statusFile)) return;
        watcher.close();
        resolve();
      });
    });
    const p = new ConnectorProcess(h.connectorDir);
    await appeared;
    const exit = await p.kill("SIGTERM");
    assert.deepEqual(exit, { code: 0, signal: null }, p.output.join("").slice(-2000));
    assert.equal(existsSync(statusFile), false, "the stopped connector removed its status.json");
  }
});
