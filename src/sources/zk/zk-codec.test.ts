import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checksum,
  commKeyBytes,
  decodeDeviceTime,
  decodePacket,
  encodeDeviceTime,
  encodePacket,
  encodeTcpFrame,
  isCalendarTime,
  TcpFrameReader,
  verifyChecksum,
} from "./zk-codec.ts";

const hex = (s: string) => Buffer.from(s.replaceAll(" ", ""), "hex");

describe("zk codec", () => {
  it("computes the checksums of captured packets (research/zk-protocol.md §3)", () => {
    assert.equal(checksum(hex("0B 00 00 00 F3 8D 03 00 5A 4B 46 61 63 65 56 65 72 73 69 6F 6E 00")), 0x175a);
    assert.equal(checksum(hex("D0 07 00 00 F3 8D 0A 00 09")), 0x6a29);
  });

  it("encodes the captured options query byte for byte and verifies it", () => {
    const packet = encodePacket(11, 0xc0c5, 5, Buffer.from("~OS\0", "latin1"));
    assert.deepEqual(encodeTcpFrame(packet), hex("50 50 82 7D 0C 00 00 00 0B 00 58 EF C5 C0 05 00 7E 4F 53 00"));
    assert.equal(verifyChecksum(packet), true);
    packet.writeUInt8(packet.readUInt8(9) ^ 1, 9);
    assert.equal(decodePacket(packet)?.checksumOk, false);
  });

  it("scrambles comm keys as the table says", () => {
    assert.deepEqual(commKeyBytes(0, 0x1234), hex("61 7D 32 6B"));
    assert.deepEqual(commKeyBytes(1, 0x0001), hex("61 FD 32 79"));
    assert.deepEqual(commKeyBytes(123456, 0x1234), hex("26 7F 32 EB"));
    assert.deepEqual(commKeyBytes(999999, 0xbeef), hex("22 81 32 D7"));
    // pyzk overflows here; the sum wraps modulo 2^32.
    assert.equal(commKeyBytes(983039, 0xffff).length, 4);
  });

  it("decodes and encodes the packed device time", () => {
    assert.equal(decodeDeviceTime(0x2368b131), "2018-06-25T17:41:05");
    assert.equal(decodeDeviceTime(0x2368b36b), "2018-06-25T17:50:35");
    assert.equal(decodeDeviceTime(0), "2000-01-01T00:00:00");
    assert.equal(encodeDeviceTime("2018-06-25T17:41:05"), 0x2368b131);
    assert.throws(() => encodeDeviceTime("2100-01-01T00:00:00"), /2000-2099/);
    assert.equal(isCalendarTime(decodeDeviceTime(encodeDeviceTime("2024-02-31T10:00:00"))), false);
    assert.equal(isCalendarTime("2024-02-29T10:00:00"), true);
  });

  it("reassembles packets split at every byte and merged into one read", () => {
    const packets = [
      encodePacket(1500, 7, 3, Buffer.alloc(8, 1)),
      encodePacket(1501, 7, 3, Buffer.alloc(65_472, 2)),
      encodePacket(2000, 7, 3),
    ];
    const stream = Buffer.concat(packets.map(encodeTcpFrame));
    const merged = new TcpFrameReader().push(stream);
    assert.deepEqual(merged, packets);
    const reader = new TcpFrameReader();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += 7) out.push(...reader.push(stream.subarray(i, i + 7)));
    assert.deepEqual(out, packets);
    assert.equal(reader.buffered, 0);
  });

  it("skips garbage, including a false magic with an absurd length, and keeps the packets around it", () => {
    const a = encodePacket(2000, 1, 1);
    const b = encodePacket(2000, 1, 2, Buffer.from("ok"));
    const fakeMagic = hex("50 50 82 7D FF FF FF 7F");
    const stream = Buffer.concat([
      hex("DE AD BE EF 50"),
      encodeTcpFrame(a),
      fakeMagic,
      hex("01 02"),
      encodeTcpFrame(b),
    ]);
    const reader = new TcpFrameReader();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += 3) out.push(...reader.push(stream.subarray(i, i + 3)));
    assert.deepEqual(out, [a, b]);
    assert.ok(reader.discardedBytes >= 5 + 8 + 2);
  });
});
