import { zkChecksum } from "./zk-checksum.ts";

/** One ZK packet: the 8-byte header fields plus the data. */
export interface ZkPacket {
  readonly command: number;
  readonly session: number;
  readonly replyId: number;
  readonly data: Buffer;
}

export const ZK_HEADER_SIZE = 8;
export const TCP_PREFIX_SIZE = 8;
export const TCP_MAGIC = Buffer.from([0x50, 0x50, 0x82, 0x7d]);

const EMPTY = Buffer.alloc(0);

export function zkPacket(command: number, session: number, replyId: number, data: Buffer = EMPTY): ZkPacket {
  return { command, session, replyId, data };
}

/** Encodes header + data with a correct checksum, or a deliberately wrong one for the bad-checksum fault. */
export function encodeZkPacket(packet: ZkPacket, corruptChecksum = false): Buffer {
  const out = Buffer.allocUnsafe(ZK_HEADER_SIZE + packet.data.length);
  out.writeUInt16LE(packet.command & 0xffff, 0);
  out.writeUInt16LE(0, 2);
  out.writeUInt16LE(packet.session & 0xffff, 4);
  out.writeUInt16LE(packet.replyId & 0xffff, 6);
  packet.data.copy(out, ZK_HEADER_SIZE);
  const sum = zkChecksum(out);
  // XOR with a non-zero constant always yields a checksum that no longer folds to zero.
  out.writeUInt16LE(corruptChecksum ? sum ^ 0x5a5a : sum, 2);
  return out;
}

/** Prepends the TCP prefix: magic plus the uint32 length of the ZK packet. */
export function frameTcp(encoded: Buffer): Buffer {
  const prefix = Buffer.allocUnsafe(TCP_PREFIX_SIZE);
  TCP_MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(encoded.length, 4);
  return Buffer.concat([prefix, encoded]);
}

/** Decodes a whole ZK packet (no TCP prefix); returns undefined when it is shorter than a header. */
export function decodeZkPacket(bytes: Buffer): ZkPacket | undefined {
  if (bytes.length < ZK_HEADER_SIZE) return undefined;
  return {
    command: bytes.readUInt16LE(0),
    session: bytes.readUInt16LE(4),
    replyId: bytes.readUInt16LE(6),
    data: bytes.subarray(ZK_HEADER_SIZE),
  };
}
