import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { createServer, type Server } from "node:net";
import { describe, it } from "node:test";
import { BioError } from "../../src/core/errors.ts";
import { ZkClient } from "../../src/sources/zk/zk-client.ts";
import { sourceHarness } from "../helpers/run-source.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { terminal, zkSourceFor } from "../helpers/zk-harness.ts";

/** Only a silent peer is meant to time out; an answering one gets a budget no busy machine reaches. */
const connect = (port: number, transport: "tcp" | "udp", extra: { commKey?: number; timeoutMs?: number } = {}) =>
  ZkClient.connect({
    host: "127.0.0.1",
    port,
    transport,
    commKey: extra.commKey ?? 0,
    timeoutMs: extra.timeoutMs ?? 10_000,
    signal: AbortSignal.timeout(30_000),
  });

async function rejects(promise: Promise<unknown>, code: string, message: RegExp): Promise<BioError> {
  const error = await promise.then(
    () => assert.fail("expected an error"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof BioError, String(error));
  assert.equal(error.code, code);
  assert.match(error.message, message);
  assert.ok(error.hint, "every device error names a fix");
  return error;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
}

describe("zk errors name the terminal and the fix", () => {
  it("refused: names the address and suggests the other transport", async () => {
    const server = createServer();
    const port = await listen(server);
    await new Promise((r) => server.close(r));
    await rejects(connect(port, "tcp"), "DEVICE_UNREACHABLE", new RegExp(`127\\.0\\.0\\.1:${port}.*refused.*UDP`, "s"));
  });

  it("accepting but silent over TCP, silent over UDP: timed out, naming the command", async () => {
    const sockets = new Set<import("node:net").Socket>();
    const server = createServer((s) => sockets.add(s));
    const port = await listen(server);
    await rejects(
      connect(port, "tcp", { timeoutMs: 400 }),
      "DEVICE_TIMEOUT",
      new RegExp(`127\\.0\\.0\\.1:${port} did not answer CONNECT within 400 ms`),
    );
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    const udp = createSocket("udp4");
    await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
    const udpPort = udp.address().port;
    await rejects(connect(udpPort, "udp", { timeoutMs: 400 }), "DEVICE_TIMEOUT", /did not answer CONNECT/);
    udp.close();
  });

  it("a terminal that serves one connection and has it taken: busy", async () => {
    await using sim = await terminal({ singleConnection: true, transports: ["tcp"] });
    const first = await connect(sim.port, "tcp");
    await rejects(connect(sim.port, "tcp"), "DEVICE_BUSY", /refused the session: it is busy.*Another program/s);
    await first.close();
    const again = await connect(sim.port, "tcp");
    await again.close();
  });

  it("a log no record layout explains: unknown record format, naming the setting", async () => {
    await using sim = await terminal({ records: 3, recordSize: 40 });
    await using tmp = await tempDir();
    await using h = sourceHarness(tmp.path);
    await h.run([zkSourceFor(sim, { recordFormat: 16 })]);
    const error = await waitFor("the format error", () => h.supervisor.status()[0]?.lastError);
    assert.equal(error.code, "DEVICE_FORMAT");
    assert.match(
      error.message,
      new RegExp(`Terminal ${sim.serial} sent a 120-byte log for 3 records.*recordFormat`, "s"),
    );
    assert.equal(h.store.depth, 0);
  });

  it("a request cancelled by its signal rejects at once with the reason, even while the terminal stalls", async () => {
    await using sim = await terminal({ records: 10 });
    const client = await connect(sim.port, "tcp");
    sim.injectFault({ kind: "stall" });
    const controller = new AbortController();
    const pending = client.request(50, undefined, 10_000, controller.signal);
    controller.abort(new Error("operator stopped the source"));
    await assert.rejects(pending, /operator stopped the source/);
    sim.clearFaults();
    await client.close();
  });
});
