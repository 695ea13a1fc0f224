import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { test } from "node:test";
import { captureIo } from "../../test/helpers/capture-io.ts";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { dataDirLayout } from "../app/data-dir.ts";
import { main } from "./main.ts";
import { cursorWords } from "./status-command.ts";

test("status and status --url share exit codes: 1 with no status.json and for a dead connector, 2 for usage", async () => {
  await using dir = await tempDir();
  for (const args of [[], ["--url"], ["--json"]]) {
    const io = captureIo();
    assert.equal(await main(["status", "--data-dir", dir.path, ...args], io), 1, args.join(" "));
    assert.match(io.stderr.join(""), /No connector is running with data directory/);
  }
  // A connector killed outright leaves its status.json behind, naming a port nobody listens on.
  const file = dataDirLayout(dir.path).statusFile;
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify({ url: "http://127.0.0.1:1", token: "t0ken", pid: 999_999 }), { mode: 0o600 });
  for (const args of [[], ["--url"]]) {
    const io = captureIo();
    assert.equal(await main(["status", "--data-dir", dir.path, ...args], io), 1, args.join(" "));
    assert.deepEqual(io.stdout, [], "no address of a dead connector");
    assert.match(io.stderr.join(""), /does not answer at http:\/\/127\.0\.0\.1:1/);
  }
  assert.equal(await main(["status", "--data-dir", dir.path, "--nope"], captureIo()), 2);
});

test("a terminal cursor reads as words, a row id as key=value", () => {
  assert.equal(
    cursorWords("CKJ1", { count: 12000, tail: "ab", time: "2026-11-26T09:00:00", size: 40 }),
    "CKJ1: 12,000 records read, newest 2026-11-26 09:00:00",
  );
  assert.equal(cursorWords("S1", 199), "S1=199");
});
