import { after } from "node:test";
import { RawZkClient } from "./raw-zk-client.ts";
import { ZkSimulator, type ZkSimulatorOptions } from "./zk-simulator.ts";

/**
 * Test helpers shared by the simulator's own tests: every simulator and client they start is closed
 * after the file's tests. Decoding here is independent of the simulator's codec on purpose.
 */
export function simKit() {
  const sims: ZkSimulator[] = [];
  const clients: RawZkClient[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(sims.map((s) => s.close()));
  });
  return {
    async sim(options: ZkSimulatorOptions = {}): Promise<ZkSimulator> {
      const s = await ZkSimulator.start(options);
      sims.push(s);
      return s;
    },
    async client(s: ZkSimulator, transport: "tcp" | "udp" = "tcp"): Promise<RawZkClient> {
      const c = transport === "tcp" ? await RawZkClient.tcp(s.port) : await RawZkClient.udp(s.port);
      clients.push(c);
      return c;
    },
  };
}

export const ATTLOG_REQUEST = Buffer.from("010d000000000000000000", "hex");
export const USERS_REQUEST = Buffer.from("0109000500000000000000", "hex");

export function chunkRequest(offset: number, length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(offset, 0);
  b.writeUInt32LE(length, 4);
  return b;
}

/** Reference section 6, decoded by hand. */
export function zkTimeText(v: number): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const sec = v % 60;
  v = Math.floor(v / 60);
  const min = v % 60;
  v = Math.floor(v / 60);
  const hour = v % 24;
  v = Math.floor(v / 24);
  const day = (v % 31) + 1;
  v = Math.floor(v / 31);
  const month = (v % 12) + 1;
  const year = Math.floor(v / 12) + 2000;
  return `${year}-${p(month)}-${p(day)} ${p(hour)}:${p(min)}:${p(sec)}`;
}

/** Polls `check` until it holds; a generous deadline, since a busy machine is slow but not stuck. */
export async function eventually(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A fixed log in 40-byte records, replayed verbatim, so the real bytes a hostile answer must lead with are known
 * exactly. (A twin simulator would not do: generated logs end a minute before the clock, so two made a second
 * apart differ.)
 */
export function fixedLog(records: number): Buffer {
  const log = Buffer.alloc(records * 40);
  for (let i = 0; i < records; i++) {
    log.writeUInt16LE(1 + (i % 100), i * 40);
    log.write(String(1001 + (i % 100)), i * 40 + 2, "latin1");
    log.writeUInt8(1, i * 40 + 26);
    log.writeUInt32LE(0x3000_0000 + i * 7, i * 40 + 27);
  }
  return log;
}

/** Bytes [offset, offset + length) of the attendance set (u32 total, then the records) a fixed log makes. */
export function setBytes(log: Buffer, offset: number, length: number): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32LE(log.length, 0);
  return Buffer.concat([header, log]).subarray(offset, offset + length);
}
