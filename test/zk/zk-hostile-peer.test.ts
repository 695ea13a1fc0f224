import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { describe, it } from "node:test";
import { BioError } from "../../src/core/errors.ts";
import { ZkClient } from "../../src/sources/zk/zk-client.ts";
import { decodePacket, encodePacket, encodeTcpFrame, TcpFrameReader } from "../../src/sources/zk/zk-codec.ts";
import { CMD } from "../../src/sources/zk/zk-commands.ts";

/**
 * Misbehaviours the simulator has no mode for, played by a few lines of device over a real TCP socket: the client
 * is what is under test here, so the peer may use its codec (the simulator, an oracle, must not).
 */
type Behaviour = (socket: Socket, command: number, replyId: number, send: (packet: Buffer) => void) => void;

async function peer(behaviour: Behaviour): Promise<Server & AsyncDisposable & { port: number; socket: () => Socket }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    const reader = new TcpFrameReader();
    const send = (packet: Buffer) => {
      if (!socket.destroyed) socket.write(encodeTcpFrame(packet));
    };
    socket.on("data", (chunk: Buffer) => {
      for (const raw of reader.push(chunk)) {
        const packet = decodePacket(raw);
        if (!packet) continue;
        if (packet.command === CMD.CONNECT) send(encodePacket(CMD.ACK_OK, 7, packet.replyId));
        else behaviour(socket, packet.command, packet.replyId, send);
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return Object.assign(server, {
    port,
    socket: () => {
      const [socket] = sockets;
      if (!socket) throw new Error("no client connected");
      return socket;
    },
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  });
}

const connect = (port: number) =>
  ZkClient.connect({
    host: "127.0.0.1",
    port,
    transport: "tcp",
    commKey: 0,
    // Every violation here is found on arrival, not by a timer: a budget no busy machine reaches.
    timeoutMs: 10_000,
    signal: AbortSignal.timeout(30_000),
  });

describe("zk client against a hostile peer", () => {
  it("an endless stream of empty data packets ends the read as a violation, not a silence timer re-armed forever", async () => {
    await using device = await peer((socket, command, replyId, send) => {
      if (command === CMD.DATA_WRRQ) {
        const info = Buffer.alloc(13);
        info.writeUInt32LE(40_004, 1);
        send(encodePacket(CMD.ACK_OK, 7, replyId, info));
      } else if (command === CMD.DATA_RDY) {
        const prepare = Buffer.alloc(8);
        prepare.writeUInt32LE(Math.min(16_384, 40_004), 0);
        send(encodePacket(CMD.PREPARE_DATA, 7, replyId, prepare));
        const flood = setInterval(() => {
          if (socket.destroyed) clearInterval(flood);
          else for (let i = 0; i < 100; i++) send(encodePacket(CMD.DATA, 7, replyId));
        }, 5);
      } else send(encodePacket(CMD.ACK_OK, 7, replyId));
    });
    const client = await connect(device.port);
    const error = await client.readSet("attendance", { chunkSize: 16_384, readAhead: 1, onData: () => undefined }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await client.close();
    assert.ok(error instanceof BioError, String(error));
    assert.equal(error.code, "DEVICE_PROTOCOL");
    assert.match(error.message, /sent an empty data packet/);
  });

  it("unasked-for events are neither acknowledged nor handed on", async () => {
    let acks = 0;
    await using device = await peer((_socket, command, replyId, send) => {
      if (command === CMD.ACK_OK) acks++;
      else send(encodePacket(CMD.ACK_OK, 7, replyId));
    });
    const client = await connect(device.port);
    const seen: number[] = [];
    client.onEvent((event) => seen.push(event.flag));
    const socket = device.socket();
    for (let i = 0; i < 50; i++) socket.write(encodeTcpFrame(encodePacket(CMD.REG_EVENT, 1, 0, Buffer.alloc(32))));
    // A request after the events: its answer proves they were all read first.
    await client.command(CMD.GET_TIME);
    assert.deepEqual([seen.length, acks], [0, 0]);
    await client.close();
  });

  it("a terminal that floods events and stops reading our acknowledgements has its session ended", async () => {
    await using device = await peer((_socket, _command, replyId, send) => send(encodePacket(CMD.ACK_OK, 7, replyId)));
    const client = await connect(device.port);
    await client.registerEvents(1);
    const socket = device.socket();
    // It reads nothing more: our acknowledgements pile up in our own socket.
    socket.pause();
    const event = encodeTcpFrame(encodePacket(CMD.REG_EVENT, 1, 0, Buffer.alloc(32)));
    const burst = Buffer.concat(Array.from({ length: 1000 }, () => event));
    const flood = setInterval(() => {
      if (!socket.destroyed) socket.write(burst);
    }, 2);
    try {
      await new Promise((resolve) => client.lost.addEventListener("abort", resolve, { once: true }));
    } finally {
      clearInterval(flood);
    }
    const reason = client.lost.reason as BioError;
    assert.equal(reason.code, "DEVICE_PROTOCOL");
    assert.match(reason.message, /pushes events faster than it reads their acknowledgements/);
  });
});
