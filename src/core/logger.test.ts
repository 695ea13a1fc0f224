import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { BioError } from "./errors.ts";
import { createLogger, Redactor } from "./logger.ts";
import { RotatingFile } from "./rotating-file.ts";

test("JSON lines carry time, level name, namespace and fields; secrets are scrubbed by value and by key", () => {
  const lines: string[] = [];
  const redact = new Redactor();
  redact.add("s3cr3t-node-value");
  const log = createLogger({ level: "debug", format: "json", write: (l) => lines.push(l), redact }).child("zk");
  log.info("Connected with s3cr3t-node-value inside.", {
    serial: "CKJ1",
    commKey: 123456,
    nested: { password: "pw-123456", note: "has s3cr3t-node-value" },
    error: new BioError("DEVICE_AUTH", "Refused s3cr3t-node-value."),
  });
  log.debug("Detail.");
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0] as string) as Record<string, unknown>;
  assert.equal(first.level, "info");
  assert.equal(first.ns, "bioapi:zk");
  assert.equal(first.serial, "CKJ1");
  assert.match(String(first.time), /^\d{4}-\d\d-\d\dT/);
  assert.equal(first.commKey, "[redacted]");
  assert.deepEqual(first.nested, { password: "[redacted]", note: "has [redacted]" });
  assert.equal((first.error as { code: string }).code, "DEVICE_AUTH");
  assert.ok(!lines.join("\n").includes("s3cr3t-node-value"));
  assert.ok(!lines.join("\n").includes("123456"));
});

test("pretty lines are for people; level filtering drops lines below it; children do not repeat the namespace", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "warn", format: "pretty", write: (l) => lines.push(l) });
  log.info("Hidden.");
  log.child("a").child("b").warn("Terminal clock is off.", { driftMs: 93_000 });
  assert.equal(lines.length, 1);
  assert.match(
    lines[0] as string,
    /^\d\d:\d\d:\d\d\.\d{3} WARN {2}bioapi:a:b: Terminal clock is off\. \{"driftMs":93000\}$/,
  );
});

test("--log-dir files rotate by size and keep a bounded number of 0600 files", async () => {
  await using dir = await tempDir();
  const logs = join(dir.path, "logs");
  const log = createLogger({ level: "info", write: () => undefined, dir: logs, maxFileBytes: 4096, maxFiles: 3 });
  for (let i = 0; i < 400; i++) log.info("A line long enough to fill a small file quickly.", { i });
  const files = readdirSync(logs).sort();
  assert.deepEqual(files, ["bioapi.1.log", "bioapi.2.log", "bioapi.3.log", "bioapi.log"]);
  for (const f of files) {
    const st = statSync(join(logs, f));
    assert.ok(st.size <= 4096, `${f} is ${st.size} bytes`);
    assert.equal(st.mode & 0o777, 0o600);
  }
  const current = readFileSync(join(logs, "bioapi.log"), "utf8").trim().split("\n");
  assert.equal((JSON.parse(current.at(-1) as string) as { i: number }).i, 399, "the newest line is in bioapi.log");
  const older = readFileSync(join(logs, "bioapi.1.log"), "utf8").trim().split("\n");
  const lastOfOlder = (JSON.parse(older.at(-1) as string) as { i: number }).i;
  const firstOfCurrent = (JSON.parse(current[0] as string) as { i: number }).i;
  assert.equal(firstOfCurrent, lastOfOlder + 1, "no line lost at the rotation");
});

test("a rotation that cannot rename keeps the current file growing instead of ending file logging", async () => {
  await using dir = await tempDir();
  const logs = join(dir.path, "logs");
  // The oldest rotated name is taken by a directory that cannot be removed: every rotation fails.
  mkdirSync(join(logs, "bioapi.1.log"), { recursive: true });
  writeFileSync(join(logs, "bioapi.1.log", "keep"), "x");
  const file = new RotatingFile({ dir: logs, maxBytes: 1024, maxFiles: 1 });
  for (let i = 0; i < 100; i++) file.write(JSON.stringify({ i, pad: "y".repeat(40) }));
  file.close();
  const lines = readFileSync(join(logs, "bioapi.log"), "utf8").trim().split("\n");
  assert.equal(lines.length, 100, "every line still reaches the file");
  assert.equal((JSON.parse(lines.at(-1) as string) as { i: number }).i, 99);
});
