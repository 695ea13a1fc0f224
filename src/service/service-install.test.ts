import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { captureIo } from "../../test/helpers/capture-io.ts";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { serviceCommand } from "../cli/service-command.ts";
import { BioError } from "../core/errors.ts";
import { type Exec, execTool } from "../platform/exec.ts";
import { MemoryFileSecurityApi } from "../platform/windows/memory-file-security-api.ts";
import { MemoryServiceManagerApi } from "../platform/windows/memory-service-manager-api.ts";
import { connectorUnit, execLine, monitorUnit } from "./linux/units.ts";
import { isScmStep, type ScmStep, windowsInstallPlan, windowsUninstallPlan } from "./windows/install.ts";

const EXE = "C:\\Program Files\\Cams\\bioapi.exe";

test("Windows install plan: key ACL by SID; services through the SCM's API: delayed auto-start, LocalSystem, quoted binPath, recovery with failure flag", async () => {
  const steps = windowsInstallPlan([EXE], "C:\\ProgramData\\CamsBioApi", "HKLM\\SOFTWARE\\CamsBioApi");
  const tools = steps.flatMap((s) => (isScmStep(s) ? [] : [[s.file, ...s.args].join(" | ")]));
  // icacls reset the access list but not the owner, and a standard user's folder stayed theirs (issue 12).
  assert.equal(
    tools.some((t) => t.startsWith("icacls.exe")),
    false,
    "the data directory is secured through Win32 calls (prepareDataDir), not icacls",
  );
  const script = steps.find((s) => !isScmStep(s) && s.file === "powershell.exe");
  assert.match(script && !isScmStep(script) ? (script.input ?? "") : "", /S-1-5-18', 'S-1-5-32-544/);
  assert.ok(
    steps.every((s) => isScmStep(s) || s.file !== "sc.exe"),
    "no sc.exe: its output is translated, and Wine's lacks failureflag",
  );

  const scm = new MemoryServiceManagerApi();
  for (const step of steps) if (isScmStep(step)) await step.run(scm);
  const connector = scm.configOf("CamsBioApi");
  assert.equal(
    connector?.definition.binPath,
    '"C:\\Program Files\\Cams\\bioapi.exe" run --service --data-dir C:\\ProgramData\\CamsBioApi --log-dir C:\\ProgramData\\CamsBioApi\\logs',
  );
  assert.equal(connector?.definition.account, "LocalSystem");
  assert.deepEqual(connector?.recovery, { restartDelaysMs: [5000, 30000, 120000], resetFailuresAfterSec: 86400 });
  assert.equal(connector?.failureFlag, true);
  const monitor = scm.configOf("CamsBioApiMonitor");
  assert.match(monitor?.definition.binPath ?? "", / monitor --service --manager windows --unit CamsBioApi /);
  assert.match(
    monitor?.definition.binPath ?? "",
    / --log-dir C:\\ProgramData\\CamsBioApi\\logs$/,
    "the monitor logs to a file too",
  );
  assert.equal(monitor?.failureFlag, true);
  // A second install is refused with the fix, not half-applied.
  await assert.rejects((steps.find(isScmStep) as ScmStep).run(scm), /already installed; uninstall it first/);

  await scm.start("CamsBioApi");
  const uninstall = windowsUninstallPlan();
  assert.deepEqual(
    uninstall.map((s) => s.calls.join()),
    [
      "ControlService CamsBioApiMonitor STOP",
      "ControlService CamsBioApi STOP",
      "DeleteService CamsBioApiMonitor",
      "DeleteService CamsBioApi",
    ],
  );
  for (const step of uninstall) await step.run(scm);
  assert.equal(scm.configOf("CamsBioApi"), undefined);
  assert.equal(scm.configOf("CamsBioApiMonitor"), undefined);
  // Uninstalling again is already done.
  for (const step of uninstall) assert.equal(await step.run(scm), undefined);

  // An SCM without the failure flag (Wine's): install goes on, and says what is missing.
  const wine = new MemoryServiceManagerApi();
  wine.failureFlagSupported = false;
  const notes: string[] = [];
  for (const step of steps) if (isScmStep(step)) notes.push((await step.run(wine)) ?? "");
  assert.equal(notes.filter((n) => /no failure flag \(ERROR_INVALID_LEVEL\)/.test(n)).length, 2);
  assert.deepEqual(wine.configOf("CamsBioApi")?.recovery, connector?.recovery, "the restart actions are still set");
});

test("Windows install refuses a data directory a standard user created, before any step runs", async () => {
  const dir = "C:\\ProgramData\\CamsBioApi";
  const security = new MemoryFileSecurityApi();
  const bob = "S-1-5-21-1004336348-1177238915-682003330-1001";
  security.create(dir, { owner: bob, dacl: `D:(A;OICI;FA;;;${bob})` });
  const ran: string[] = [];
  const exec: Exec = async (file) => {
    ran.push(file);
    return { code: 0, stdout: "", stderr: "" };
  };
  const noScm = async () => {
    ran.push("the SCM");
    return new MemoryServiceManagerApi();
  };
  const io = captureIo();
  await assert.rejects(
    serviceCommand(["install", "--manager", "windows", "--data-dir", dir], io, exec, {}, noScm, security),
    (e: unknown) => e instanceof BioError && e.message.includes(`owned by ${bob}`) && /takeown/.test(e.hint ?? ""),
  );
  assert.deepEqual(ran, [], "no service created, no key secured");
  assert.deepEqual(security.securityOf(dir), { owner: bob, dacl: `D:(A;OICI;FA;;;${bob})` });
  assert.equal(io.text().includes("Installed"), false);

  // --dry-run touches nothing and still says what the data directory step does.
  const dry = captureIo();
  const calls = security.calls.length;
  assert.equal(
    await serviceCommand(
      ["install", "--manager", "windows", "--data-dir", dir, "--dry-run"],
      dry,
      exec,
      {},
      noScm,
      security,
    ),
    0,
  );
  assert.equal(security.calls.length, calls);
  assert.match(dry.stdout[0] ?? "", /^owner check, then C:\\ProgramData\\CamsBioApi owner Administrators, O:BAD:PAI/);
  assert.equal(ran.length, 0);
});

test("ExecStart quoting: spaces, quotes, % and $ survive systemd's parser", () => {
  assert.equal(execLine(["/opt/cams bio/bioapi", "run", "50%", "$HOME"]), '"/opt/cams bio/bioapi" run 50%% $$HOME');
});

const hasAnalyze = (await execTool("systemd-analyze", ["--version"]).catch(() => ({ code: -1 }))).code === 0;

test("systemd units pass systemd-analyze verify and score OK on security", {
  skip: !hasAnalyze && "no systemd-analyze",
}, async () => {
  await using dir = await tempDir();
  const o = { command: ["/usr/bin/true"], credential: { name: "cams-bioapi-kek", path: "/etc/credstore.encrypted/k" } };
  const files = {
    "cams-bioapi.service": connectorUnit(o),
    "cams-bioapi-monitor.service": monitorUnit({ ...o, credential: null }),
  };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir.path, name), text);
  const paths = Object.keys(files).map((n) => join(dir.path, n));
  const verify = await execTool("systemd-analyze", ["verify", "--man=no", ...paths], { timeoutMs: 60_000 });
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.equal(verify.stderr.trim(), "", "no warnings");
  for (const path of paths) {
    const sec = await execTool("systemd-analyze", ["security", "--offline=yes", "--threshold=25", path], {
      timeoutMs: 60_000,
    });
    assert.equal(sec.code, 0, sec.stdout);
    const score = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(sec.stdout)?.[1]);
    assert.ok(score <= 2.5, `${path}: exposure ${score}`);
  }
  const connector = files["cams-bioapi.service"];
  for (const line of [
    "Type=notify",
    "WatchdogSec=60s",
    "Restart=on-failure",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "StateDirectory=cams-bioapi",
    "LogsDirectory=cams-bioapi",
    "LoadCredentialEncrypted=cams-bioapi-kek:",
  ])
    assert.ok(connector.includes(line), line);
  assert.equal(connector.includes("MemoryDenyWriteExecute"), false, "V8's JIT needs W+X pages");
});
