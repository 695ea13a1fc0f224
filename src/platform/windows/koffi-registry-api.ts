import { loadKoffi } from "../native.ts";
import {
  failed,
  ok,
  queryInTwoCalls,
  REG_TYPE,
  type RegistryApi,
  type RegistryValue,
  WIN32_ERROR,
  type Win32Outcome,
} from "./registry-api.ts";

/*
 * advapi32's registry functions through koffi. Each returns its Win32 error number (LSTATUS) directly, so no
 * GetLastError and no message text is involved. The calls are synchronous: they touch a local hive and return in
 * microseconds, and a worker thread would add a koffi callback per call for nothing.
 */

/** (HKEY)(ULONG_PTR)(LONG)0x80000002: sign-extended to a pointer-sized integer on 64-bit Windows. */
const HKEY_LOCAL_MACHINE = -2147483646;
const KEY_QUERY_VALUE = 0x0001;
const KEY_SET_VALUE = 0x0002;
/** Always the 64-bit view, so an x86 build would never read or write WOW6432Node. */
const KEY_WOW64_64KEY = 0x0100;
const READ_CONTROL = 0x0002_0000;
const WRITE_DAC = 0x0004_0000;
const WRITE_OWNER = 0x0008_0000;
const REG_OPTION_NON_VOLATILE = 0;
const REG_CREATED_NEW_KEY = 1;
const OWNER_SECURITY_INFORMATION = 0x1;
const DACL_SECURITY_INFORMATION = 0x4;
const SDDL_REVISION_1 = 1;

type Native = (...args: unknown[]) => unknown;

interface Advapi32 {
  sizeofSecurityAttributes: number;
  open: Native;
  create: Native;
  setValue: Native;
  queryValue: Native;
  deleteValue: Native;
  close: Native;
  setKeySecurity: Native;
  sddlToSd: Native;
  localFree: Native;
}

let bound: Promise<Advapi32> | undefined;

/** Bound once per process: koffi type names are global (see crypt32() in koffi-dpapi.ts). */
function advapi32(): Promise<Advapi32> {
  bound ??= bind();
  return bound;
}

async function bind(): Promise<Advapi32> {
  const koffi = await loadKoffi();
  const SECURITY_ATTRIBUTES = koffi.struct("CAMS_SECURITY_ATTRIBUTES", {
    nLength: "uint32",
    lpSecurityDescriptor: "void *",
    bInheritHandle: "int32",
  });
  const lib = koffi.load("advapi32.dll");
  const kernel32 = koffi.load("kernel32.dll");
  const hkeyOut = koffi.out(koffi.pointer("intptr"));
  return {
    sizeofSecurityAttributes: koffi.sizeof(SECURITY_ATTRIBUTES),
    open: lib.func("__stdcall", "RegOpenKeyExW", "int32", ["intptr", "str16", "uint32", "uint32", hkeyOut]),
    create: lib.func("__stdcall", "RegCreateKeyExW", "int32", [
      "intptr",
      "str16",
      "uint32",
      "str16",
      "uint32",
      "uint32",
      koffi.pointer(SECURITY_ATTRIBUTES),
      hkeyOut,
      koffi.out(koffi.pointer("uint32")),
    ]),
    setValue: lib.func("__stdcall", "RegSetValueExW", "int32", [
      "intptr",
      "str16",
      "uint32",
      "uint32",
      "void *",
      "uint32",
    ]),
    queryValue: lib.func("__stdcall", "RegQueryValueExW", "int32", [
      "intptr",
      "str16",
      "void *",
      koffi.out(koffi.pointer("uint32")),
      "void *",
      koffi.inout(koffi.pointer("uint32")),
    ]),
    deleteValue: lib.func("__stdcall", "RegDeleteValueW", "int32", ["intptr", "str16"]),
    close: lib.func("__stdcall", "RegCloseKey", "int32", ["intptr"]),
    setKeySecurity: lib.func("__stdcall", "RegSetKeySecurity", "int32", ["intptr", "uint32", "void *"]),
    sddlToSd: lib.func("__stdcall", "ConvertStringSecurityDescriptorToSecurityDescriptorW", "bool", [
      "str16",
      "uint32",
      koffi.out(koffi.pointer("void *")),
      "void *",
    ]),
    localFree: kernel32.func("__stdcall", "LocalFree", "void *", ["void *"]),
  };
}

/** Opens HKLM\path with `access`, runs `fn` on the handle, always closes it. */
function withKey<T>(
  api: Advapi32,
  path: string,
  access: number,
  fn: (hkey: unknown) => Win32Outcome<T>,
): Win32Outcome<T> {
  const out: unknown[] = [0];
  const rc = api.open(HKEY_LOCAL_MACHINE, path, 0, access | KEY_WOW64_64KEY, out) as number;
  if (rc !== WIN32_ERROR.SUCCESS) return failed(rc);
  try {
    return fn(out[0]);
  } finally {
    api.close(out[0]);
  }
}

export class KoffiRegistryApi implements RegistryApi {
  async createKey(path: string, sddl: string): Promise<Win32Outcome<"created" | "opened">> {
    const api = await advapi32();
    const sd: unknown[] = [null];
    // The SDDL is a constant of ours, so a failure here is a bug, reported as "invalid security descriptor".
    if (!api.sddlToSd(sddl, SDDL_REVISION_1, sd, null)) return failed(WIN32_ERROR.INVALID_SECURITY_DESCR);
    try {
      const hkey: unknown[] = [0];
      const disposition: number[] = [0];
      const attributes = { nLength: api.sizeofSecurityAttributes, lpSecurityDescriptor: sd[0], bInheritHandle: 0 };
      const access = KEY_QUERY_VALUE | KEY_SET_VALUE | READ_CONTROL | WRITE_DAC | WRITE_OWNER | KEY_WOW64_64KEY;
      const rc = api.create(
        HKEY_LOCAL_MACHINE,
        path,
        0,
        null,
        REG_OPTION_NON_VOLATILE,
        access,
        attributes,
        hkey,
        disposition,
      );
      if (rc !== WIN32_ERROR.SUCCESS) return failed(rc as number);
      try {
        // A key that already existed keeps whatever access list it had; set ours on it too. The descriptor's
        // protected flag (P in the SDDL) keeps SOFTWARE's inheritable entries out.
        const sec = api.setKeySecurity(
          hkey[0],
          OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
          sd[0],
        ) as number;
        if (sec !== WIN32_ERROR.SUCCESS) return failed(sec);
      } finally {
        api.close(hkey[0]);
      }
      return ok(disposition[0] === REG_CREATED_NEW_KEY ? "created" : "opened");
    } finally {
      api.localFree(sd[0]);
    }
  }

  async setBinary(path: string, name: string, data: Uint8Array): Promise<Win32Outcome<void>> {
    const api = await advapi32();
    return withKey(api, path, KEY_SET_VALUE, (hkey) => {
      const bytes = Buffer.from(data);
      const rc = api.setValue(hkey, name, 0, REG_TYPE.BINARY, bytes.length > 0 ? bytes : null, bytes.length) as number;
      return rc === WIN32_ERROR.SUCCESS ? ok(undefined) : failed(rc);
    });
  }

  async query(path: string, name: string): Promise<Win32Outcome<RegistryValue>> {
    const api = await advapi32();
    return withKey(api, path, KEY_QUERY_VALUE, (hkey) =>
      queryInTwoCalls((buffer, out) => {
        const type: number[] = [0];
        const size: number[] = [buffer ? buffer.length : 0];
        const rc = api.queryValue(hkey, name, null, type, buffer, size) as number;
        out.type = type[0] ?? 0;
        out.size = size[0] ?? 0;
        return rc;
      }),
    );
  }

  async deleteValue(path: string, name: string): Promise<Win32Outcome<void>> {
    const api = await advapi32();
    return withKey(api, path, KEY_SET_VALUE, (hkey) => {
      const rc = api.deleteValue(hkey, name) as number;
      return rc === WIN32_ERROR.SUCCESS ? ok(undefined) : failed(rc);
    });
  }
}
