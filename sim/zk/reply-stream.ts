import { filler } from "./hostile.ts";
import { ZK_CMD } from "./zk-commands.ts";
import { type ZkPacket, zkPacket } from "./zk-packet.ts";

/** How a streamed tail is sent: as fast as the socket drains, or one CMD_DATA per interval. */
export type StreamPace = { readonly kind: "flood" } | { readonly kind: "interval"; readonly ms: number };

/**
 * The lazily built tail of a bulk answer. Packets are made one at a time as the connection sends
 * them, so an answer that announces 4 GiB never holds more than one packet.
 */
export interface ReplyStream {
  readonly packets: Iterator<ZkPacket>;
  readonly pace: StreamPace;
}

/** CMD_DATA packets carrying `chunk` and then zeros until `total` bytes are out, then ACK_OK. */
export function* chunkPackets(
  chunk: Buffer,
  total: number,
  packetSize: number,
  session: number,
  replyId: number,
): Generator<ZkPacket, void, undefined> {
  for (let at = 0; at < total; at += packetSize) {
    const end = Math.min(total, at + packetSize);
    yield zkPacket(ZK_CMD.DATA, session, replyId, slice(chunk, at, end));
  }
  yield zkPacket(ZK_CMD.ACK_OK, session, replyId);
}

function slice(chunk: Buffer, from: number, to: number): Buffer {
  if (to <= chunk.length) return chunk.subarray(from, to);
  if (from >= chunk.length) return filler(to - from);
  return Buffer.concat([chunk.subarray(from), filler(to - chunk.length)]);
}
