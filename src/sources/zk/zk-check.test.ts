import assert from "node:assert/strict";
import { test } from "node:test";
import { terminal, zkSourceFor } from "../../../test/helpers/zk-harness.ts";
import type { ZkSourceConfig } from "../../config/config-schema.ts";
import type { Finding } from "../../core/check.ts";
import type { RunningSource } from "../source-check.ts";
import { openZkSession } from "./open-zk-session.ts";
import { checkTerminal } from "./zk-check.ts";

const zk = (config: unknown) => config as ZkSourceConfig;
const byCheck = (findings: readonly Finding[]) => Object.fromEntries(findings.map((f) => [f.check, f]));
const signal = () => AbortSignal.timeout(30_000);

test("a terminal that answers: reachable, authenticated, its log, and a clock in step", async () => {
  await using sim = await terminal({ records: 7, serial: "CKJ-CHECK" });
  const findings = await checkTerminal({ config: zk(zkSourceFor(sim)), running: undefined }, signal());
  assert.deepEqual(
    findings.map((f) => [f.check, f.status]),
    [
      ["reachable", "ok"],
      ["authenticated", "ok"],
      ["records", "ok"],
      ["clock", "ok"],
    ],
  );
  const f = byCheck(findings);
  assert.match(f.records?.subject ?? "", /^terminal gate \(127\.0\.0\.1:\d+\/tcp\)$/);
  assert.match(f.records?.detail ?? "", /^CKJ-CHECK.*: 7 records/);
  assert.equal(f.authenticated?.detail, "no comm key needed");
  // The terminal tells time in whole seconds, so a clock in step may read a second off.
  assert.match(f.clock?.detail ?? "", /^(in step with|1 s (ahead of|behind)) this machine$/);
});

test("a wrong comm key answers but is refused; another terminal at the address fails identity", async () => {
  await using locked = await terminal({ commKey: 1111 });
  const refused = byCheck(
    await checkTerminal({ config: zk(zkSourceFor(locked, { commKey: 2 })), running: undefined }, signal()),
  );
  assert.equal(refused.reachable?.status, "ok");
  assert.equal(refused.authenticated?.status, "fail");
  assert.match(refused.authenticated?.fix ?? "", /Set commKey/);

  await using other = await terminal({ serial: "CKJ-OTHER" });
  const moved = byCheck(
    await checkTerminal({ config: zk(zkSourceFor(other, { serial: "CKJ-MINE" })), running: undefined }, signal()),
  );
  assert.equal(moved.identity?.status, "fail");
  assert.match(moved.identity?.detail ?? "", /reports serial CKJ-OTHER, the config expects CKJ-MINE/);
});

test("a clock off by whole hours warns with the time-zone advice", async () => {
  await using sim = await terminal({ clockOffsetMs: 5.5 * 3_600_000 });
  const f = byCheck(await checkTerminal({ config: zk(zkSourceFor(sim)), running: undefined }, signal()));
  assert.equal(f.clock?.status, "warn");
  assert.match(f.clock?.detail ?? "", /5 h 30 min ahead.*wrong time zone/);
  assert.match(f.clock?.fix ?? "", /Check the source's timezone \(now Asia\/Kolkata\)/);
});

test("a one-connection terminal held elsewhere: busy, unless the running connector reads it", async () => {
  await using sim = await terminal({ singleConnection: true, transports: ["tcp"], serial: "CKJ-ONE" });
  const config = zk(zkSourceFor(sim));
  const holder = await openZkSession(config, signal());
  try {
    const busy = byCheck(await checkTerminal({ config, running: undefined }, signal()));
    assert.equal(busy.reachable?.status, "fail");
    assert.match(busy.reachable?.detail ?? "", /^DEVICE_BUSY: /);
    assert.match(busy.reachable?.fix ?? "", /Another program holds/);

    const reading: RunningSource = {
      state: "running",
      lastPollAt: new Date().toISOString(),
      lastError: null,
      device: { serial: "CKJ-ONE", address: `${sim.host}:${sim.port}/tcp`, records: 0 },
    };
    const held = await checkTerminal({ config, running: reading }, signal());
    assert.equal(held.length, 1);
    assert.equal(held[0]?.status, "ok");
    assert.match(
      held[0]?.detail ?? "",
      /running connector holds the terminal's session.*0 records, serial CKJ-ONE\); doctor's own session was refused \(DEVICE_BUSY\)/,
    );

    const stale = { ...reading, lastPollAt: new Date(Date.now() - 3_600_000).toISOString() };
    assert.equal(byCheck(await checkTerminal({ config, running: stale }, signal())).reachable?.status, "fail");
  } finally {
    await holder.close();
  }
});
