import assert from "node:assert/strict";
import { lstat, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { intentFile, readIntent, writeIntent } from "./monitor-state.ts";

test("the monitor's files are 0600 and never written through a link at the old temp name", {
  skip: process.platform === "win32",
}, async () => {
  await using dir = await tempDir();
  const path = intentFile(dir.path);
  const victim = `${dir.path}/elsewhere.json`;
  await writeFile(victim, "theirs\n", { mode: 0o644 });
  // The name the writer used before: `<file>.<pid>.tmp`, opened 0644 with plain "w".
  await symlink(victim, `${path}.${process.pid}.tmp`);
  await writeIntent(dir.path, "stopped", "test");
  assert.equal((await lstat(path)).isFile(), true);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.equal(await readFile(victim, "utf8"), "theirs\n");
  assert.equal((await readIntent(dir.path))?.desired, "stopped");
});
