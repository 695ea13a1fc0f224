/** Bytes XORed into the key, ASCII "ZKSO". */
const SALT = [0x5a, 0x4b, 0x53, 0x4f] as const;

function reverseBits32(value: number): number {
  let v = value >>> 0;
  let out = 0;
  for (let i = 0; i < 32; i++) {
    out = ((out << 1) | (v & 1)) >>> 0;
    v >>>= 1;
  }
  return out;
}

/**
 * The 4 bytes a client sends in CMD_AUTH (reference section 4). Step 2 wraps modulo 2^32 on
 * purpose: pyzk does not, and fails for some key/session pairs.
 */
export function makeCommKey(key: number, session: number, ticks = 50): Buffer {
  const k = (reverseBits32(key) + session) >>> 0;
  const b = [k & 0xff, (k >>> 8) & 0xff, (k >>> 16) & 0xff, k >>> 24].map((byte, i) => byte ^ (SALT[i] as number));
  const [c0, c1, , c3] = [b[2], b[3], b[0], b[1]] as [number, number, number, number];
  const t = ticks & 0xff;
  return Buffer.from([c0 ^ t, c1 ^ t, t, c3 ^ t]);
}

/** Checks CMD_AUTH data against our key; byte 2 carries the client's ticks in clear, so we can rebuild it. */
export function isCommKeyValid(key: number, session: number, authData: Buffer): boolean {
  if (authData.length < 4) return false;
  const expected = makeCommKey(key, session, authData[2] as number);
  return expected.equals(authData.subarray(0, 4));
}
