import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { execTool } from "./exec.ts";
import { connectorUnit, execLine, monitorUnit } from "./linux/units.ts";
import { windowsInstallPlan, windowsUninstallPlan } from "./windows/install.ts";

const EXE = "C:\\Program Files\\Cams\\bioapi.exe";

test("Windows install plan: ACLs by SID, delayed auto-start, LocalSystem, quoted binPath, recovery with failure flag", () => {
  const steps = windowsInstallPlan([EXE], "C:\\ProgramData\\CamsBioApi", "HKLM\\SOFTWARE\\CamsBioApi");
  const lines = steps.map((s) => [s.file, ...s.args].join(" | "));
  assert.deepEqual(lines.slice(2, 6), [
    'sc.exe | create | CamsBioApi | binPath= | "C:\\Program Files\\Cams\\bioapi.exe" run --service --data-dir C:\\ProgramData\\CamsBioApi --log-dir C:\\ProgramData\\CamsBioApi\\logs | start= | delayed-auto | obj= | LocalSystem | DisplayName= | Cams Bio API Service',
    "sc.exe | description | CamsBioApi | Collects attendance punches from biometric terminals and attendance databases and sends them to the Cams cloud.",
    "sc.exe | failure | CamsBioApi | reset= | 86400 | actions= | restart/5000/restart/30000/restart/120000",
    "sc.exe | failureflag | CamsBioApi | 1",
  ]);
  assert.match(
    lines[0] ?? "",
    /icacls\.exe \| C:\\ProgramData\\CamsBioApi \| \/inheritance:r .*\*S-1-5-18.*\*S-1-5-32-544/,
  );
  assert.match(steps[1]?.input ?? "", /S-1-5-18', 'S-1-5-32-544/);
  assert.match(lines[6] ?? "", /create \| CamsBioApiMonitor .* monitor --service --manager windows --unit CamsBioApi/);
  assert.match(lines[6] ?? "", / --log-dir C:\\ProgramData\\CamsBioApi\\logs \|/, "the monitor logs to a file too");
  assert.equal(steps.filter((s) => s.args[0] === "failureflag").length, 2);
  assert.deepEqual(
    windowsUninstallPlan().map((s) => s.args.slice(0, 2).join(" ")),
    ["stop CamsBioApiMonitor", "stop CamsBioApi", "delete CamsBioApiMonitor", "delete CamsBioApi"],
  );
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
