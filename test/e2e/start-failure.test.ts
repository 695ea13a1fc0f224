import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { e2e } from "../helpers/e2e-harness.ts";

/** Listening servers of this process: the status server is TCP, the health channel a unix socket (PipeWrap). */
const servers = () => process.getActiveResourcesInfo().filter((r) => r === "TCPServerWrap" || r === "PipeWrap");

// A part whose start fails after it opened a server closes it itself: Parts stops only the parts that are up.
for (const file of ["status.json", "health-channel.json"]) {
  test(`a start whose ${file} cannot be written closes every server it opened`, async () => {
    await using h = await e2e();
    const before = servers().length;
    // A non-empty directory at the path: the atomic rename onto it fails after the server is listening.
    mkdirSync(join(h.connectorDir, file, "x"), { recursive: true });
    await assert.rejects(h.startConnector());
    assert.equal(servers().length, before, "a server opened by the failed start is still listening");
    assert.ok(!h.logs.some((l) => l.includes("Connector stopped.")));
  });
}
