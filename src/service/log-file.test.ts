import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { logFileWriter } from "./log-file.ts";

test("the service log file rotates by size and keeps a bounded number of files", async () => {
  await using dir = await tempDir();
  const logs = join(dir.path, "logs");
  const write = logFileWriter(logs, "connector.log", { maxBytes: 100, keep: 2 });
  for (let i = 0; i < 20; i++) write(`line ${String(i).padStart(2, "0")} ${"x".repeat(20)}`); // 29 bytes each
  assert.deepEqual(readdirSync(logs).sort(), ["connector.log", "connector.log.1", "connector.log.2"]);
  const current = readFileSync(join(logs, "connector.log"), "utf8");
  assert.ok(current.length <= 100, `${current.length} bytes`);
  assert.match(current, /line 19 x+\n$/);
  // Newest first: .1 holds the lines just before the current file's.
  const first = (f: string) => readFileSync(join(logs, f), "utf8").slice(5, 7);
  assert.ok(Number(first("connector.log.1")) > Number(first("connector.log.2")));

  // An existing file counts towards the limit when a new writer opens it (a service restart).
  writeFileSync(join(logs, "monitor.log"), "y".repeat(90));
  logFileWriter(logs, "monitor.log", { maxBytes: 100, keep: 2 })("z".repeat(20));
  assert.equal(readFileSync(join(logs, "monitor.log.1"), "utf8").length, 90);
  assert.equal(readFileSync(join(logs, "monitor.log"), "utf8"), `${"z".repeat(20)}\n`);
});
