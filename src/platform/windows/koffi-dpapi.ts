import { loadKoffi } from "../native.ts";
import type { Dpapi } from "./dpapi.ts";

const CRYPTPROTECT_UI_FORBIDDEN = 0x1;
const CRYPTPROTECT_LOCAL_MACHINE = 0x4;

type Koffi = Awaited<ReturnType<typeof loadKoffi>>;

type Native = (...args: unknown[]) => unknown;

type Crypt32 = { koffi: Koffi; protect: Native; unprotect: Native; localFree: Native };

let crypt32Api: Promise<Crypt32> | undefined;

/**
 * Bound once per process: koffi type names are global, so a second koffi.struct("CAMS_DATA_BLOB") throws "Duplicate
 * type name" (found by the Wine smoke test: enroll's protect-then-unprotect always failed on its second call).
 */
function crypt32(): Promise<Crypt32> {
  crypt32Api ??= bindCrypt32();
  return crypt32Api;
}

async function bindCrypt32(): Promise<Crypt32> {
  const koffi = await loadKoffi();
  const DATA_BLOB = koffi.struct("CAMS_DATA_BLOB", { cbData: "uint32", pbData: "void *" });
  const lib = koffi.load("crypt32.dll");
  const kernel32 = koffi.load("kernel32.dll");
  return {
    koffi,
    protect: lib.func("__stdcall", "CryptProtectData", "bool", [
      koffi.pointer(DATA_BLOB),
      "str16",
      koffi.pointer(DATA_BLOB),
      "void *",
      "void *",
      "uint32",
      koffi.out(koffi.pointer(DATA_BLOB)),
    ]),
    unprotect: lib.func("__stdcall", "CryptUnprotectData", "bool", [
      koffi.pointer(DATA_BLOB),
      "void *",
      koffi.pointer(DATA_BLOB),
      "void *",
      "void *",
      "uint32",
      koffi.out(koffi.pointer(DATA_BLOB)),
    ]),
    localFree: kernel32.func("__stdcall", "LocalFree", "void *", ["void *"]),
  };
}

export class KoffiDpapi implements Dpapi {
  readonly name = "dpapi";

  async #call(which: "protect" | "unprotect", data: Uint8Array, entropy: Uint8Array): Promise<Buffer> {
    const api = await crypt32();
    const input = { cbData: data.length, pbData: Buffer.from(data) };
    const ent = { cbData: entropy.length, pbData: Buffer.from(entropy) };
    const out: { cbData: number; pbData: unknown } = { cbData: 0, pbData: null };
    const flags = CRYPTPROTECT_UI_FORBIDDEN | CRYPTPROTECT_LOCAL_MACHINE;
    const ok =
      which === "protect"
        ? api.protect(input, "cams-bioapi", ent, null, null, flags, out)
        : api.unprotect(input, null, ent, null, null, flags, out);
    if (!ok) throw new Error(`${which === "protect" ? "CryptProtectData" : "CryptUnprotectData"} failed.`);
    try {
      // Copy before LocalFree: decoding into an ArrayBuffer view does not copy.
      return Buffer.from(api.koffi.decode(out.pbData, "uint8_t", out.cbData) as number[]);
    } finally {
      api.localFree(out.pbData);
    }
  }

  protect(data: Uint8Array, entropy: Uint8Array): Promise<Buffer> {
    return this.#call("protect", data, entropy);
  }

  unprotect(blob: Uint8Array, entropy: Uint8Array): Promise<Buffer> {
    return this.#call("unprotect", blob, entropy);
  }
}
