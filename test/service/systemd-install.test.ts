import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { serviceCommand } from "../../src/cli/service-command.ts";
import { BioError } from "../../src/core/errors.ts";
import type { Exec, ExecResult } from "../../src/platform/exec.ts";
import type { SystemdHost } from "../../src/service/linux/install.ts";
import { captureIo } from "../helpers/capture-io.ts";
import { BIN } from "../helpers/connector-process.ts";
import { tempDir } from "../helpers/temp-dir.ts";

/**
 * A stand-in for the OS tools: it records every call and answers as scripted, so an install can be driven through
 * its failure paths without touching this machine's users, units or /etc.
 */
function fakeTools(answer: (file: string, args: readonly string[]) => ExecResult | undefined) {
  const calls: string[] = [];
  const exec: Exec = async (file, args, options) => {
    calls.push([file, ...args].join(" "));
    const scripted = answer(file, args);
    if (scripted) return scripted;
    if (file === "systemd-creds" && args[0] === "encrypt") {
      await writeFile(String(args.at(-1)), options?.input ?? "");
    }
    return { code: 0, stdout: "", stderr: "" };
  };
  return { exec, calls };
}

async function install(host: Partial<SystemdHost>, exec: Exec, extra: string[] = []) {
  const io = captureIo();
  try {
    return { code: await serviceCommand(["install", "--manager", "systemd", ...extra], io, exec, host), io };
  } catch (error) {
    assert.ok(error instanceof BioError, String(error));
    return { code: 1, io, error };
  }
}

test("install without systemd running says so, offers --manager process, and writes nothing", async () => {
  await using dir = await tempDir();
  const tools = fakeTools(() => undefined);
  const credential = { name: "k", path: join(dir.path, "credstore", "k") };
  // A fixed program path: the checkout running this test may itself sit under /tmp or /home.
  const command = ["/opt/cams-bioapi/bioapi"];
  const r = await install({ systemdRunning: () => false, unitDir: dir.path, credential, command }, tools.exec);
  assert.equal(r.code, 1);
  assert.match(
    r.error?.message ?? "",
    /systemd is not running on this machine.*nothing was written.*--manager process/,
  );
  assert.deepEqual(await readdir(dir.path), []);
  assert.deepEqual(tools.calls, [], "no tool was run: no user, no credential");

  const dry = await install({ systemdRunning: () => false, unitDir: dir.path, credential, command }, tools.exec, [
    "--dry-run",
  ]);
  assert.equal(dry.code, 0, "a dry run still shows the plan");
  assert.match(dry.io.text(), /systemd is not running here: a real install would refuse/);
  assert.match(dry.io.text(), /Would install cams-bioapi\.service/);
  assert.deepEqual(await readdir(dir.path), []);
});

test("an install that fails half-way removes the units, the user and the credential it created", async () => {
  await using dir = await tempDir();
  const tools = fakeTools((file, args) => {
    if (file === "id") return { code: 1, stdout: "", stderr: "no such user" };
    if (file === "systemctl" && args[0] === "daemon-reload") {
      return { code: 1, stdout: "", stderr: "Failed to connect to bus: No such file or directory" };
    }
    return undefined;
  });
  const credential = { name: "k", path: join(dir.path, "credstore", "k") };
  const command = ["/opt/cams-bioapi/bioapi"];
  const r = await install({ systemdRunning: () => true, unitDir: dir.path, credential, command }, tools.exec);
  assert.equal(r.code, 1);
  assert.match(
    r.error?.message ?? "",
    /daemon-reload failed \(exit 1\) while: load the unit files: Failed to connect to bus/,
  );
  assert.match(
    r.io.text(),
    /removed again what it wrote: .*credstore\/k, .*cams-bioapi\.service, .*cams-bioapi-monitor\.service, the user cams-bioapi/,
  );
  assert.deepEqual(await readdir(dir.path), ["credstore"]);
  assert.equal(existsSync(credential.path), false);
  assert.ok(tools.calls.includes("userdel cams-bioapi"), tools.calls.join("\n"));
});

test("an executable under /tmp or /home is refused, also in a dry run, because the units hide those", async () => {
  await using dir = await tempDir();
  for (const command of [["/tmp/x/bioapi"], ["/usr/bin/node", "/home/ops/bioapi/bin/bioapi.mjs"]]) {
    const tools = fakeTools(() => undefined);
    const host = { systemdRunning: () => true, unitDir: dir.path, command };
    const r = await install(host, tools.exec, ["--dry-run"]);
    assert.equal(r.code, 1);
    assert.match(r.error?.message ?? "", /Refusing to install: .*(\/tmp|\/home).*could never start/);
    assert.match(r.error?.message ?? "", /Copy the executable to a fixed place/);
    assert.doesNotMatch(r.io.text(), /Installed/);
  }
  assert.deepEqual(await readdir(dir.path), []);
});

test("a good install: Documentation= names the guide that exists beside the program; uninstall removes the units", async () => {
  await using dir = await tempDir();
  const tools = fakeTools(() => undefined);
  const credential = { name: "k", path: join(dir.path, "credstore", "k") };
  // The repository's own guide beside bin/: wherever the checkout sits, the units' hiding is not this test's subject.
  const host = {
    systemdRunning: () => true,
    unitDir: dir.path,
    credential,
    command: [process.execPath, BIN],
    hidden: () => undefined,
  };
  const r = await install(host, tools.exec);
  assert.equal(r.code, 0, r.io.text());
  const unit = await readFile(join(dir.path, "cams-bioapi.service"), "utf8");
  const doc = /^Documentation=file:\/\/(.+)$/m.exec(unit)?.[1];
  assert.ok(doc && existsSync(decodeURI(doc)), `Documentation= ${doc}`);

  const gone = captureIo();
  const noSystemd = { ...host, systemdRunning: () => false };
  assert.equal(await serviceCommand(["uninstall", "--manager", "systemd"], gone, tools.exec, noSystemd), 0);
  assert.match(gone.text(), /systemd is not running, so nothing was stopped/);
  assert.deepEqual((await readdir(dir.path)).sort(), ["credstore"]);
});

test("service status without systemd fails with the reason; start before enrolling names the missing directory", async () => {
  await using dir = await tempDir();
  const tools = fakeTools(() => undefined);
  await assert.rejects(
    serviceCommand(["status", "--manager", "systemd"], captureIo(), tools.exec, { systemdRunning: () => false }),
    /systemd is not running on this machine/,
  );
  const missing = join(dir.path, "nowhere");
  await assert.rejects(
    serviceCommand(["start", "--manager", "systemd", "--data-dir", missing], captureIo(), tools.exec, {
      systemdRunning: () => true,
    }),
    new RegExp(`Not enrolled: ${missing} does not exist\\. Enroll first: sudo bioapi enroll --data-dir ${missing}`),
  );
  assert.equal(existsSync(missing), false);
});
