import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { libcNotifyTransport, SystemdNotifier, sockaddrUn } from "../../src/service/linux/sd-notify.ts";
import { BIN } from "../helpers/connector-process.ts";
import { e2e } from "../helpers/e2e-harness.ts";
import { FakeNotifySocket } from "../helpers/fake-notify-socket.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";

test("sockaddr_un: path with terminator, abstract names with a leading NUL", () => {
  assert.deepEqual([...sockaddrUn("/run/x").subarray(0, 3)], [1, 0, 0x2f]);
  assert.equal(sockaddrUn("/run/x").at(-1), 0);
  assert.deepEqual([...sockaddrUn("@abc")], [1, 0, 0, 0x61, 0x62, 0x63]);
});

test("watchdog pings go out at half the interval, only while the connector makes progress", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "notify.sock");
  using socket = await FakeNotifySocket.bind(path);
  let healthy = true;
  const notifier = new SystemdNotifier({
    transport: await libcNotifyTransport(path),
    watchdogUs: 200_000,
    healthy: () => healthy,
  });
  await notifier.ready("up");
  await waitFor("READY=1", () => socket.count("READY=1") === 1);
  await waitFor("three pings", () => socket.count("WATCHDOG=1") >= 3, 30_000);
  healthy = false;
  await new Promise((r) => setTimeout(r, 150));
  const frozen = socket.count("WATCHDOG=1");
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(socket.count("WATCHDOG=1"), frozen, "no pings while stalled: systemd's watchdog will restart it");
  await notifier.stopping();
  await waitFor("STOPPING=1", () => socket.count("STOPPING=1") === 1);
});

test("a real bioapi run under a fake systemd: READY, watchdog pings, STOPPING; a frozen process stops pinging", async () => {
  await using h = await e2e();
  const path = join(h.dir, "notify.sock");
  using socket = await FakeNotifySocket.bind(path);
  const child = spawn(process.execPath, [BIN, "run", "--data-dir", h.connectorDir, "--log-format", "json"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, NOTIFY_SOCKET: path, WATCHDOG_USEC: "300000" },
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  try {
    // A failure deadline only: a start took over 20 s at load 18.
    await waitFor("READY=1", () => socket.count("READY=1") === 1, 90_000);
    const ready = socket.messages.find((m) => m.text.startsWith("READY=1"))?.text ?? "";
    assert.match(ready, new RegExp(`MAINPID=${child.pid}`));
    assert.ok(existsSync(join(h.connectorDir, "status.json")), "ready only after the status endpoint is up");
    await waitFor("watchdog pings", () => socket.count("WATCHDOG=1") >= 3, 30_000);
    child.kill("SIGSTOP");
    await new Promise((r) => setTimeout(r, 100));
    const frozen = socket.count("WATCHDOG=1");
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(socket.count("WATCHDOG=1"), frozen, "a hung process sends nothing: systemd's WatchdogSec fires");
    child.kill("SIGCONT");
    await waitFor("pings again", () => socket.count("WATCHDOG=1") > frozen, 30_000);
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    await waitFor("STOPPING=1", () => socket.count("STOPPING=1") === 1, 10_000);
  } finally {
    child.kill("SIGKILL");
  }
});
