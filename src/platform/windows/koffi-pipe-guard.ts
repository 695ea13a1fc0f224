import { loadKoffi } from "../native.ts";
import { pipeError } from "./pipe-access.ts";

/*
 * The health pipe's two Win32 guards, through koffi: the connector replaces the pipe's access list right after
 * creating it (Node's server creates it with the default list), and the monitor asks who serves a pipe before it
 * sends anything. Every handle here is opened with SECURITY_IDENTIFICATION, so the far end can learn who we are but
 * can never act as us: the monitor runs as LocalSystem, and a pipe server may otherwise impersonate its clients.
 */

const GENERIC_READ = 0x8000_0000;
const READ_CONTROL = 0x0002_0000;
const WRITE_DAC = 0x0004_0000;
const OPEN_EXISTING = 3;
const SECURITY_SQOS_PRESENT = 0x0010_0000;
const SECURITY_IDENTIFICATION = 0x0001_0000;
const INVALID_HANDLE_VALUE = -1;
const SE_KERNEL_OBJECT = 6;
const DACL_SECURITY_INFORMATION = 0x4;
const PROTECTED_DACL_SECURITY_INFORMATION = 0x8000_0000;
const SDDL_REVISION_1 = 1;

type Native = (...args: unknown[]) => unknown;

interface Bound {
  koffi: Awaited<ReturnType<typeof loadKoffi>>;
  createFile: Native;
  closeHandle: Native;
  serverPid: Native;
  sddlToSd: Native;
  getDacl: Native;
  setSecurityInfo: Native;
  getSecurityInfo: Native;
  sdToSddl: Native;
  localFree: Native;
  lastError: Native;
}

let bound: Promise<Bound> | undefined;

/** Bound once per process: koffi type names are global (see crypt32() in koffi-dpapi.ts). */
function api(): Promise<Bound> {
  bound ??= bind();
  return bound;
}

async function bind(): Promise<Bound> {
  const koffi = await loadKoffi();
  const kernel32 = koffi.load("kernel32.dll");
  const advapi = koffi.load("advapi32.dll");
  const voidOut = koffi.out(koffi.pointer("void *"));
  return {
    koffi,
    createFile: kernel32.func("__stdcall", "CreateFileW", "intptr", [
      "str16",
      "uint32",
      "uint32",
      "void *",
      "uint32",
      "uint32",
      "void *",
    ]),
    closeHandle: kernel32.func("__stdcall", "CloseHandle", "bool", ["intptr"]),
    serverPid: kernel32.func("__stdcall", "GetNamedPipeServerProcessId", "bool", [
      "intptr",
      koffi.out(koffi.pointer("uint32")),
    ]),
    sddlToSd: advapi.func("__stdcall", "ConvertStringSecurityDescriptorToSecurityDescriptorW", "bool", [
      "str16",
      "uint32",
      voidOut,
      "void *",
    ]),
    getDacl: advapi.func("__stdcall", "GetSecurityDescriptorDacl", "bool", [
      "void *",
      koffi.out(koffi.pointer("int32")),
      voidOut,
      koffi.out(koffi.pointer("int32")),
    ]),
    setSecurityInfo: advapi.func("__stdcall", "SetSecurityInfo", "uint32", [
      "intptr",
      "int32",
      "uint32",
      "void *",
      "void *",
      "void *",
      "void *",
    ]),
    getSecurityInfo: advapi.func("__stdcall", "GetSecurityInfo", "uint32", [
      "intptr",
      "int32",
      "uint32",
      "void *",
      "void *",
      voidOut,
      "void *",
      voidOut,
    ]),
    sdToSddl: advapi.func("__stdcall", "ConvertSecurityDescriptorToStringSecurityDescriptorW", "bool", [
      "void *",
      "uint32",
      "uint32",
      voidOut,
      "void *",
    ]),
    localFree: kernel32.func("__stdcall", "LocalFree", "void *", ["void *"]),
    lastError: kernel32.func("__stdcall", "GetLastError", "uint32", []),
  };
}

async function withPipe<T>(path: string, access: number, body: (b: Bound, handle: unknown) => T): Promise<T> {
  const b = await api();
  const handle = b.createFile(
    path,
    access,
    0,
    null,
    OPEN_EXISTING,
    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
    null,
  );
  if (Number(handle) === INVALID_HANDLE_VALUE) throw pipeError("Opening", path, b.lastError() as number);
  try {
    return body(b, handle);
  } finally {
    b.closeHandle(handle);
  }
}

/** The process that serves the pipe (the server end), whatever it claims in its answers. */
export function pipeServerPid(path: string): Promise<number> {
  return withPipe(path, GENERIC_READ, (b, h) => {
    const pid = [0];
    if (!b.serverPid(h, pid)) throw pipeError("GetNamedPipeServerProcessId", path, b.lastError() as number);
    return pid[0] ?? 0;
  });
}

/** Replaces the pipe's access list with `sddl` (a DACL), protected from inheritance. */
export function restrictPipe(path: string, sddl: string): Promise<void> {
  return withPipe(path, READ_CONTROL | WRITE_DAC, (b, h) => {
    const sd: unknown[] = [null];
    if (!b.sddlToSd(sddl, SDDL_REVISION_1, sd, null)) {
      throw pipeError("ConvertStringSecurityDescriptorToSecurityDescriptor", path, b.lastError() as number);
    }
    try {
      const present = [0];
      const dacl: unknown[] = [null];
      const defaulted = [0];
      if (!b.getDacl(sd[0], present, dacl, defaulted)) {
        throw pipeError("GetSecurityDescriptorDacl", path, b.lastError() as number);
      }
      const rc = b.setSecurityInfo(
        h,
        SE_KERNEL_OBJECT,
        DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
        null,
        null,
        dacl[0],
        null,
      ) as number;
      if (rc !== 0) throw pipeError("SetSecurityInfo", path, rc);
    } finally {
      b.localFree(sd[0]);
    }
  });
}

/** The pipe's access list as SDDL, for `bioapi service status` and the Wine proof. */
export function pipeAccess(path: string): Promise<string> {
  return withPipe(path, READ_CONTROL, (b, h) => {
    const dacl: unknown[] = [null];
    const sd: unknown[] = [null];
    const rc = b.getSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, null, null, dacl, null, sd) as number;
    if (rc !== 0) throw pipeError("GetSecurityInfo", path, rc);
    try {
      const text: unknown[] = [null];
      if (!b.sdToSddl(sd[0], SDDL_REVISION_1, DACL_SECURITY_INFORMATION, text, null)) {
        throw pipeError("ConvertSecurityDescriptorToStringSecurityDescriptor", path, b.lastError() as number);
      }
      try {
        return b.koffi.decode.string16(text[0]);
      } finally {
        b.localFree(text[0]);
      }
    } finally {
      b.localFree(sd[0]);
    }
  });
}
