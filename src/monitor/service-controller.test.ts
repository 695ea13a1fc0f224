import assert from "node:assert/strict";
import { test } from "node:test";
import type { Exec, ExecResult } from "../platform/exec.ts";
import { MemoryServiceManagerApi } from "../platform/windows/memory-service-manager-api.ts";
import { windowsServices } from "../service/windows/install.ts";
import { parseSystemctlShow, SystemdController, WindowsServiceController } from "./service-controller.ts";

/** Records every command and answers from a table keyed by "file verb". */
function fakeExec(answers: Record<string, Partial<ExecResult>>) {
  const calls: string[] = [];
  const exec: Exec = async (file, args) => {
    calls.push([file, ...args].join(" "));
    const a = answers[`${file} ${args[0]}`] ?? {};
    return { code: 0, stdout: "", stderr: "", ...a };
  };
  return { exec, calls };
}

const show = (fields: Record<string, string | number>) =>
  `${Object.entries(fields)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n")}\n`;

test("systemctl show: running, auto-restart, an administrator's stop, a crash and a watchdog kill", () => {
  assert.deepEqual(
    parseSystemctlShow(show({ ActiveState: "active", SubState: "running", Result: "success", MainPID: 42 })),
    {
      state: "running",
      pid: 42,
      stoppedCleanly: false,
      exit: null,
    },
  );
  // Restart=on-failure is already bringing it back: the monitor waits.
  assert.equal(
    parseSystemctlShow(show({ ActiveState: "activating", SubState: "auto-restart", MainPID: 0 })).state,
    "starting",
  );
  assert.deepEqual(
    parseSystemctlShow(
      show({ ActiveState: "inactive", SubState: "dead", Result: "success", MainPID: 0, ExecMainStatus: 0 }),
    ),
    { state: "stopped", pid: null, stoppedCleanly: true, exit: null },
  );
  const crash = parseSystemctlShow(
    show({ ActiveState: "failed", SubState: "failed", Result: "exit-code", MainPID: 0, ExecMainStatus: 70 }),
  );
  assert.deepEqual(crash, { state: "stopped", pid: null, stoppedCleanly: false, exit: "exit-code (status 70)" });
  const watchdog = parseSystemctlShow(show({ ActiveState: "failed", Result: "watchdog", ExecMainStatus: 6 }));
  assert.equal(watchdog.stoppedCleanly, false);
  assert.match(watchdog.exit ?? "", /watchdog/);
});

test("SystemdController: reset-failed before start (the start limit), kill with SIGKILL, errors name the cause", async () => {
  const f = fakeExec({ "systemctl show": { stdout: show({ ActiveState: "active", Result: "success", MainPID: 7 }) } });
  const c = new SystemdController("cams-bioapi.service", f.exec);
  assert.equal((await c.query()).pid, 7);
  await c.start();
  await c.kill();
  assert.deepEqual(f.calls.slice(1), [
    "systemctl reset-failed cams-bioapi.service",
    "systemctl start --no-block cams-bioapi.service",
    "systemctl kill --signal=SIGKILL cams-bioapi.service",
  ]);
  const denied = new SystemdController("cams-bioapi.service", fakeExec({ "systemctl start": { code: 4 } }).exec);
  await assert.rejects(denied.start(), /systemctl start cams-bioapi.service failed \(exit 4\)/);
});

test("WindowsServiceController: states from the SCM's API, a crash is not a clean stop, a hung service ends by taskkill", async () => {
  const scm = new MemoryServiceManagerApi();
  await scm.create(
    windowsServices(["bioapi.exe"], "C:\\ProgramData\\CamsBioApi", "HKLM\\SOFTWARE\\CamsBioApi").connector,
  );
  const f = fakeExec({});
  const c = new WindowsServiceController("CamsBioApi", scm, f.exec);
  assert.deepEqual(await c.query(), { state: "stopped", pid: null, stoppedCleanly: true, exit: null });
  await c.start();
  const { pid } = await c.query();
  assert.ok(pid !== null && pid > 0);
  assert.deepEqual(await c.query(), { state: "running", pid, stoppedCleanly: false, exit: null });
  await c.kill();
  assert.equal(f.calls.at(-1), `taskkill.exe /F /PID ${pid}`);
  scm.kill("CamsBioApi");
  assert.deepEqual(await c.query(), { state: "stopped", pid: null, stoppedCleanly: false, exit: "Windows error 1067" });
  await c.start();
  scm.exit("CamsBioApi", 70);
  assert.deepEqual((await c.query()).exit, "service exit code 70");
  scm.startsPending = true;
  await c.start();
  assert.equal((await c.query()).state, "starting");
  // Already running is not an error for start.
  await c.start();
  assert.deepEqual(scm.calls.filter((x) => x.call === "start").length, 4, "every start went to the SCM");
  // A service that is not installed is an error naming the fix, not a "stopped" that would be restarted forever.
  await assert.rejects(new WindowsServiceController("Nope", scm, f.exec).query(), /bioapi service install/);
});
