import assert from "node:assert/strict";
import { test } from "node:test";
import { captureIo } from "../../test/helpers/capture-io.ts";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { BioError } from "../core/errors.ts";
import { SID } from "../platform/windows/file-security-api.ts";
import { MemoryFileSecurityApi } from "../platform/windows/memory-file-security-api.ts";
import { runCommand } from "./run-command.ts";

const BOB = "S-1-5-21-1004336348-1177238915-682003330-1001";

test("the Windows service refuses to start on a data directory another account owns, before opening anything", async () => {
  await using dir = await tempDir();
  const security = new MemoryFileSecurityApi();
  security.create(dir.path, { owner: BOB, dacl: `D:(A;OICI;FA;;;${BOB})` });
  await assert.rejects(
    runCommand(["--service", "--data-dir", dir.path], captureIo(), { platform: "win32", fileSecurity: security }),
    (e: unknown) =>
      e instanceof BioError &&
      e.code === "SERVICE" &&
      e.message.includes(`is owned by ${BOB}`) &&
      /bioapi service install again/.test(e.hint ?? ""),
  );
  assert.deepEqual(
    security.calls.map((c) => c.op),
    ["owner"],
  );
});

test("an administrators' data directory passes the check (and the start goes on: here to 'not enrolled')", async () => {
  await using dir = await tempDir();
  const security = new MemoryFileSecurityApi();
  security.create(dir.path, { owner: SID.ADMINISTRATORS, dacl: "" });
  await assert.rejects(
    runCommand(["--service", "--data-dir", dir.path], captureIo(), { platform: "win32", fileSecurity: security }),
    (e: unknown) => e instanceof BioError && e.code === "NOT_ENROLLED",
  );
  assert.equal(security.calls.length, 1);
});

test("off Windows, or without --service, the owner is not asked", async () => {
  await using dir = await tempDir();
  const security = new MemoryFileSecurityApi();
  for (const [argv, platform] of [
    [["--service", "--data-dir", dir.path], "linux"],
    [["--data-dir", dir.path], "win32"],
  ] as const) {
    await assert.rejects(runCommand([...argv], captureIo(), { platform, fileSecurity: security }), /Not enrolled/);
  }
  assert.equal(security.calls.length, 0);
});
