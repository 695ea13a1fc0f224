import assert from "node:assert/strict";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { BioError } from "../core/errors.ts";
import { InstanceLock } from "./instance-lock.ts";

test("a data directory has one holder at a time; the refusal names the holder's pid", async () => {
  await using dir = await tempDir();
  assert.equal(InstanceLock.probe(dir.path), null);
  const lock = InstanceLock.acquire(dir.path, "run");
  assert.deepEqual(
    { ...InstanceLock.probe(dir.path), since: undefined },
    { pid: process.pid, command: "run", since: undefined },
  );
  assert.throws(
    () => InstanceLock.acquire(dir.path, "enroll"),
    (e: unknown) =>
      e instanceof BioError &&
      e.code === "DATA_DIR_IN_USE" &&
      e.context.pid === process.pid &&
      e.message.includes(`a connector (pid ${process.pid}`),
  );
  lock.release();
  assert.equal(InstanceLock.probe(dir.path), null);
  const again = InstanceLock.acquire(dir.path, "enroll");
  assert.equal(InstanceLock.holder(dir.path)?.command, "enroll");
  again.release();
});
