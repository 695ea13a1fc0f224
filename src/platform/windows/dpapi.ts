/**
 * Windows DPAPI in machine scope (CRYPTPROTECT_LOCAL_MACHINE): any process on this machine that can read the blob
 * can decrypt it, so the protection is the registry ACL around it; a copy taken to another machine is useless.
 * The entropy is not a secret (it ships in the executable); it only keeps other programs from casually decrypting.
 */
export interface Dpapi {
  readonly name: string;
  protect(data: Uint8Array, entropy: Uint8Array): Promise<Buffer>;
  unprotect(blob: Uint8Array, entropy: Uint8Array): Promise<Buffer>;
}
