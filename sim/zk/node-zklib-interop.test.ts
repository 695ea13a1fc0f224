// node-zklib builds Dates in host-local time; pin the zone so DST cannot shift a record.
process.env.TZ = "UTC";

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import ZKLib from "node-zklib";
import { ZkSimulator, type ZkSimulatorOptions } from "./zk-simulator.ts";

/**
 * node-zklib 1.3.0 as an outside oracle. Its limits shape these tests:
 * - It reads one ZK packet per socket read, so the simulator must use writeMode "paced".
 * - TCP hard-codes 40-byte records and 72-byte users and cuts user IDs to 9 characters.
 * - UDP is used only after TCP is refused, so the UDP test runs a UDP-only simulator; there it
 *   hard-codes 16-byte records and 28-byte users and reads the user ID of a record as 2 bytes.
 * - More than one 64 KB chunk loses data (reference part B), so logs stay small (500 records).
 * - It ignores PREPARE_DATA's contents and the CONNECT reply's data, so both real-firmware variants
 *   read fine. It has no CMD_GET_PINWIDTH helper; its public executeCmd sends the raw command.
 * - Split chunks (tcpDataPacketSize 1008): it reads exactly one ZK packet per socket read and adds up
 *   CMD_DATA bytes until the chunk is complete, so with paced writes (one packet per read) it copes;
 *   packets merged into one read would still break it, as they do without the split.
 */

const sims: ZkSimulator[] = [];
after(async () => {
  await Promise.all(sims.map((s) => s.close()));
});

const localText = (d: Date): string => {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
};

describe("node-zklib against the simulator", () => {
  it("reads users and attendance over TCP (40-byte records, 72-byte users)", async () => {
    const sim = await ZkSimulator.start({ users: 50, records: 500, writeMode: "paced", transports: ["tcp"] });
    sims.push(sim);
    const zk = new ZKLib("127.0.0.1", sim.port, 5000, 0);
    await zk.createSocket();
    assert.equal(zk.connectionType, "tcp");
    const info = await zk.getInfo();
    assert.equal(info.userCounts, 50);
    assert.equal(info.logCounts, 500);
    assert.ok(info.logCapacity >= 500);

    const users = await zk.getUsers();
    assert.equal(users.err, null);
    assert.deepEqual(
      users.data.map((u) => [u.uid, String(u.userId)]),
      sim.users.map((u) => [u.uid, u.userId]),
    );

    const logs = await zk.getAttendances();
    assert.equal(logs.err, null);
    assert.equal(logs.data.length, 500);
    assert.deepEqual(
      logs.data.map((r) => [String(r.deviceUserId), localText(r.recordTime)]),
      sim.records().map((r) => [r.userId, r.time]),
    );
    await zk.disconnect();
    const st = sim.stats();
    assert.equal(st.bulkPrepares, 2);
    assert.equal(st.checksumMismatches, 0, "node-zklib's two checksum slips cancel out");
    assert.equal(st.setTime + st.clearAttlog + st.clearData, 0);
  });

  it("falls back to UDP and reads 16-byte records and 28-byte users", async () => {
    const sim = await ZkSimulator.start({
      users: 30,
      records: 400,
      recordSize: 16,
      userSize: 28,
      writeMode: "paced",
      transports: ["udp"],
    });
    sims.push(sim);
    const zk = new ZKLib("127.0.0.1", sim.port, 5000, 0);
    await zk.createSocket();
    assert.equal(zk.connectionType, "udp");
    const info = await zk.getInfo();
    assert.deepEqual([info.userCounts, info.logCounts], [30, 400]);

    const users = await zk.getUsers();
    assert.equal(users.err, null);
    assert.deepEqual(
      users.data.map((u) => [u.uid, String(u.userId)]),
      sim.users.map((u) => [u.uid, u.userId]),
    );

    const logs = await zk.getAttendances();
    assert.equal(logs.err, null);
    assert.deepEqual(
      logs.data.map((r) => [String(r.deviceUserId), localText(r.recordTime)]),
      sim.records().map((r) => [r.userId, r.time]),
    );
    await zk.disconnect();
  });

  /** A full TCP read (users and attendance) by node-zklib, compared with the simulator's own view. */
  async function readsEverything(options: ZkSimulatorOptions): Promise<ZkSimulator> {
    const sim = await ZkSimulator.start({
      users: 40,
      records: 500,
      writeMode: "paced",
      transports: ["tcp"],
      ...options,
    });
    sims.push(sim);
    const zk = new ZKLib("127.0.0.1", sim.port, 5000, 0);
    await zk.createSocket();
    assert.equal(zk.connectionType, "tcp");
    const users = await zk.getUsers();
    assert.equal(users.err, null);
    assert.deepEqual(
      users.data.map((u) => String(u.userId)),
      sim.users.map((u) => u.userId),
    );
    const logs = await zk.getAttendances();
    assert.equal(logs.err, null);
    assert.deepEqual(
      logs.data.map((r) => [String(r.deviceUserId), localText(r.recordTime)]),
      sim.records().map((r) => [r.userId, r.time]),
    );
    await zk.disconnect();
    return sim;
  }

  it("reads a terminal whose CONNECT acknowledgement carries a data byte", async () => {
    await readsEverything({ connectReplyData: Buffer.from([0x01]) });
  });

  for (const word of [1008, 65_536]) {
    it(`reads a terminal whose PREPARE_DATA second word is ${word}`, async () => {
      await readsEverything({ prepareDataSecondWord: word });
    });
  }

  it("reads chunks split into 1,008-byte CMD_DATA packets with a counting session field", async () => {
    // A wider pause than usual: each of the ~20 packets must reach node-zklib in a read of its own.
    const sim = await readsEverything({ tcpDataPacketSize: 1008, dataPacketSessionCounter: true, pacingMs: 15 });
    const perChunk = Math.ceil((4 + 500 * 40) / 1008) + 2;
    assert.ok(sim.stats().packetsSent >= perChunk, "the chunk really was split");
  });

  it("gets the PIN width through CMD_GET_PINWIDTH (69), byte 0 of the reply's data", async () => {
    const sim = await ZkSimulator.start({ pin2Width: 14, transports: ["tcp"] });
    sims.push(sim);
    const zk = new ZKLib("127.0.0.1", sim.port, 5000, 0);
    await zk.createSocket();
    const reply = await zk.executeCmd(69, " P");
    // node-zklib hands back the ZK header and data: command, checksum, session, reply id, then the width.
    assert.deepEqual([reply.readUInt16LE(0), reply.length, reply[8]], [2000, 9, 14]);
    await zk.disconnect();
  });
});
