import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rawEncode } from "./raw-zk-client.ts";
import { eventually, simKit } from "./sim-test-kit.ts";

/** What the product's tests read back: the commands a client really sent, and whether it said goodbye. */

const { sim, client } = simKit();

const mask = (m: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(m, 0);
  return b;
};

describe("received-command log", () => {
  for (const transport of ["tcp", "udp"] as const) {
    it(`logs every packet with its transport, data and arrival time over ${transport}; counts EXIT and unregistering`, async () => {
      const s = await sim({ transports: [transport] });
      const c = await client(s, transport);
      const before = performance.now();
      await c.connect();
      await c.call(500, mask(1));
      await c.call(50);
      await c.call(500, mask(0));
      await c.call(500); // no mask at all unregisters too, as the device reads it
      await c.call(1001);
      const after = performance.now();
      const log = s.receivedCommands();
      assert.deepEqual(
        log.map((e) => [e.command, e.transport, e.data.toString("hex")]),
        [
          [1000, transport, ""],
          [500, transport, "01000000"],
          [50, transport, ""],
          [500, transport, "00000000"],
          [500, transport, ""],
          [1001, transport, ""],
        ],
      );
      assert.ok(log.every((e, i) => e.at >= before && e.at <= after && e.at >= (log[i - 1]?.at ?? before)));
      const st = s.stats();
      assert.deepEqual([st.exits, st.eventUnregisters, st.commands[500]], [1, 2, 3]);
    });
  }

  it("logs on arrival, before the virtual wire delivers the packet to the device", async () => {
    const s = await sim({ link: { bandwidthBitsPerSec: 1e9, latencyMs: 2000 }, transports: ["tcp"] });
    const c = await client(s);
    c.send(1001);
    await eventually("the EXIT in the log", () => s.stats().exits === 1);
    // Its answer needs two 2-second crossings; the log entry and the count came first.
    assert.equal(c.reads.length, 0);
    assert.equal(s.stats().commands[1001] ?? 0, 0, "not handled yet");
    assert.equal(s.receivedCommands()[0]?.command, 1001);
  });

  it("counts EXIT on receipt while a stall holds the answer", async () => {
    const s = await sim({ transports: ["tcp"] });
    const c = await client(s);
    await c.connect();
    s.injectFault({ kind: "stall" });
    c.send(1001);
    await eventually("the EXIT counted", () => s.stats().exits === 1);
    assert.equal(c.isClosed, false);
    s.clearFaults();
    assert.equal((await c.next()).command, 2000);
  });

  it("keeps only the last 10,000 packets", async () => {
    const s = await sim({ transports: ["tcp"] });
    const c = await client(s);
    await c.connect();
    for (let i = 0; i < 10_050; i++) c.sendRaw(rawEncode(4242, c.session, i & 0xffff, mask(i)));
    await eventually("every packet logged", () => s.stats().packetsReceived >= 10_051, 30_000);
    const log = s.receivedCommands();
    assert.equal(log.length, 10_000);
    assert.equal(log[0]?.data.readUInt32LE(0), 50);
    assert.equal(log.at(-1)?.data.readUInt32LE(0), 10_049);
  });
});

describe("silent fault", () => {
  for (const transport of ["tcp", "udp"] as const) {
    it(`over ${transport}: receives and logs, answers nothing and pushes nothing until cleared`, async () => {
      const s = await sim({ transports: [transport] });
      const c = await client(s, transport);
      await c.connect();
      await c.call(500, mask(1));
      s.injectFault({ kind: "silent" });
      c.send(50);
      await assert.rejects(c.next(300), /No packet/);
      s.addPunch({ userId: "1001" });
      c.send(1001);
      await eventually("the EXIT counted", () => s.stats().exits === 1);
      await eventually("both requests swallowed", () => s.stats().silenced === 2);
      assert.equal(s.recordCount, 1, "the punch is still recorded");
      assert.equal(c.isClosed, false, "EXIT was not acted on");
      s.clearFaults();
      const id = c.send(50);
      const reply = await c.next();
      assert.deepEqual([reply.command, reply.replyId], [2000, id], "the swallowed requests stay unanswered");
      assert.equal(c.events.length, 0, "the punch made while silent was never pushed");
      s.addPunch({ userId: "1002" });
      await c.waitForEvents(1);
      assert.deepEqual(
        s.receivedCommands().map((e) => e.command),
        [1000, 500, 50, 1001, 50],
      );
    });
  }
});
