/** Sum of LE 16-bit words with end-around carry (an odd last byte is a word with a zero high byte). */
function onesComplementSum(bytes: Uint8Array): number {
  let sum = 0;
  const even = bytes.length & ~1;
  for (let i = 0; i < even; i += 2) {
    sum += (bytes[i] as number) | ((bytes[i + 1] as number) << 8);
    // Fold early: a 64 KB chunk could otherwise approach 2^31 and lose the cheap integer path.
    if (sum > 0x7fff_ffff) sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (even !== bytes.length) sum += bytes[even] as number;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Checksum to store at offset 2 of a packet whose checksum field is still zero (reference section 3). */
export function zkChecksum(packetWithZeroChecksum: Uint8Array): number {
  return ~onesComplementSum(packetWithZeroChecksum) & 0xffff;
}

/** True when a received packet, checksum included, folds to ones'-complement zero (either encoding). */
export function isZkChecksumValid(packet: Uint8Array): boolean {
  const folded = onesComplementSum(packet);
  return folded === 0xffff || folded === 0;
}
