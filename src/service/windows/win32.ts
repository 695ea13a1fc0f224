import type { Dpapi } from "../../secrets/dpapi.ts";
import { loadKoffi } from "../native.ts";
import type { ScmPort } from "./service-host.ts";
import type { ServiceStatusReport } from "./service-state.ts";

/*
 * The Win32 calls, through koffi (prebuilt N-API module; no compiler on the build machine). Only this file and
 * koffi-registry-api.ts know about FFI types; everything they feed is tested on Linux through the ports. Verified under Wine only by the
 * research spike; see docs/operations.md for what still needs a real Windows machine.
 */

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

/** advapi32's service API: the dispatcher runs on a libuv worker thread; koffi brings SCM callbacks to the JS thread. */
export async function koffiScm(): Promise<ScmPort> {
  const koffi = await loadKoffi();
  const advapi = koffi.load("advapi32.dll");
  const SERVICE_STATUS = koffi.struct("CAMS_SERVICE_STATUS", {
    dwServiceType: "uint32",
    dwCurrentState: "uint32",
    dwControlsAccepted: "uint32",
    dwWin32ExitCode: "uint32",
    dwServiceSpecificExitCode: "uint32",
    dwCheckPoint: "uint32",
    dwWaitHint: "uint32",
  });
  const ServiceMain = koffi.proto("__stdcall", "CamsServiceMain", "void", ["uint32", "void *"]);
  const HandlerEx = koffi.proto("__stdcall", "CamsHandlerEx", "uint32", ["uint32", "uint32", "void *", "void *"]);
  const TABLE_ENTRY = koffi.struct("CAMS_SERVICE_TABLE_ENTRYW", {
    lpServiceName: "str16",
    lpServiceProc: koffi.pointer(ServiceMain),
  });
  const StartServiceCtrlDispatcherW = advapi.func("__stdcall", "StartServiceCtrlDispatcherW", "bool", [
    koffi.pointer(TABLE_ENTRY),
  ]);
  const RegisterServiceCtrlHandlerExW = advapi.func("__stdcall", "RegisterServiceCtrlHandlerExW", "void *", [
    "str16",
    koffi.pointer(HandlerEx),
    "void *",
  ]);
  const SetServiceStatus = advapi.func("__stdcall", "SetServiceStatus", "bool", [
    "void *",
    koffi.pointer(SERVICE_STATUS),
  ]);
  let handle: unknown = null;

  return {
    dispatch(name, handlers) {
      return new Promise((resolve, reject) => {
        const handler = koffi.register((control: number) => handlers.control(control), koffi.pointer(HandlerEx));
        const main = koffi.register(() => {
          handle = RegisterServiceCtrlHandlerExW(name, handler, null);
          handlers.main();
        }, koffi.pointer(ServiceMain));
        const table = [
          { lpServiceName: name, lpServiceProc: main },
          { lpServiceName: null, lpServiceProc: null },
        ];
        StartServiceCtrlDispatcherW.async(table, (error: unknown, ok: boolean) => {
          koffi.unregister(main);
          koffi.unregister(handler);
          if (error) reject(error);
          else if (!ok) {
            reject(
              new Error(
                "StartServiceCtrlDispatcher failed: this process was not started by the Service Control Manager (use bioapi run without --service from a console).",
              ),
            );
          } else resolve();
        });
      });
    },
    setStatus(r: ServiceStatusReport) {
      if (!handle) return;
      SetServiceStatus(handle, {
        dwServiceType: r.serviceType,
        dwCurrentState: r.currentState,
        dwControlsAccepted: r.controlsAccepted,
        dwWin32ExitCode: r.win32ExitCode,
        dwServiceSpecificExitCode: r.serviceSpecificExitCode,
        dwCheckPoint: r.checkPoint,
        dwWaitHint: r.waitHintMs,
      });
    },
  };
}
