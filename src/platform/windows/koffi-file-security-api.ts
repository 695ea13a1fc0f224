import { lstat } from "node:fs/promises";
import { win32 } from "node:path";
import { loadKoffi } from "../native.ts";
import { DATA_DIR_SDDL, type FileSecurityApi } from "./file-security-api.ts";
import { failed, ok, WIN32_ERROR, type Win32Outcome } from "./registry-api.ts";

/*
 * advapi32's file security functions through koffi. GetNamedSecurityInfoW and TreeResetNamedSecurityInfoW return
 * their Win32 error number; the BOOL conversions fail only on input of ours (a constant SDDL, a SID Windows just
 * gave us), so their failure is reported as a fixed number rather than through GetLastError.
 */

const SE_FILE_OBJECT = 1;
const OWNER_SECURITY_INFORMATION = 0x1;
const DACL_SECURITY_INFORMATION = 0x4;
const PROTECTED_DACL_SECURITY_INFORMATION = 0x8000_0000;
const SDDL_REVISION_1 = 1;
const PROGRESS_INVOKE_NEVER = 1;
const ERROR_INVALID_SID = 1337;

type Native = (...args: unknown[]) => unknown;

interface Advapi32 {
  decode16: (ptr: unknown) => string;
  getNamedSecurityInfo: Native;
  sidToString: Native;
  sddlToSd: Native;
  sdOwner: Native;
  sdDacl: Native;
  treeReset: Native;
  createDirectory: Native;
  getLastError: Native;
  sizeofSecurityAttributes: number;
  localFree: Native;
  currentProcess: Native;
  openProcessToken: Native;
  getTokenInformation: Native;
  closeHandle: Native;
  readPointer: (buffer: Buffer) => unknown;
}

let bound: Promise<Advapi32> | undefined;

/** Bound once per process, like the registry's and crypt32's bindings. No koffi type names are declared here. */
function advapi32(): Promise<Advapi32> {
  bound ??= bind();
  return bound;
}

async function bind(): Promise<Advapi32> {
  const koffi = await loadKoffi();
  const lib = koffi.load("advapi32.dll");
  const kernel32 = koffi.load("kernel32.dll");
  const ptrOut = koffi.out(koffi.pointer("void *"));
  // Anonymous: koffi type names are global, and koffi-registry-api.ts already declares a named one.
  const SECURITY_ATTRIBUTES = koffi.struct({
    nLength: "uint32",
    lpSecurityDescriptor: "void *",
    bInheritHandle: "int32",
  });
  const intOut = koffi.out(koffi.pointer("int32"));
  return {
    decode16: (ptr) => koffi.decode.string16(ptr),
    getNamedSecurityInfo: lib.func("__stdcall", "GetNamedSecurityInfoW", "uint32", [
      "str16",
      "uint32",
      "uint32",
      ptrOut,
      "void *",
      "void *",
      "void *",
      ptrOut,
    ]),
    sidToString: lib.func("__stdcall", "ConvertSidToStringSidW", "bool", ["void *", ptrOut]),
    sddlToSd: lib.func("__stdcall", "ConvertStringSecurityDescriptorToSecurityDescriptorW", "bool", [
      "str16",
      "uint32",
      ptrOut,
      "void *",
    ]),
    sdOwner: lib.func("__stdcall", "GetSecurityDescriptorOwner", "bool", ["void *", ptrOut, intOut]),
    sdDacl: lib.func("__stdcall", "GetSecurityDescriptorDacl", "bool", ["void *", intOut, ptrOut, intOut]),
    treeReset: lib.func("__stdcall", "TreeResetNamedSecurityInfoW", "uint32", [
      "str16",
      "uint32",
      "uint32",
      "void *",
      "void *",
      "void *",
      "void *",
      "bool",
      "void *",
      "uint32",
      "void *",
    ]),
    createDirectory: kernel32.func("__stdcall", "CreateDirectoryW", "bool", [
      "str16",
      koffi.pointer(SECURITY_ATTRIBUTES),
    ]),
    // koffi keeps the thread's last error from the call before (since 2.6.10), so this reads CreateDirectoryW's.
    getLastError: kernel32.func("__stdcall", "GetLastError", "uint32", []),
    sizeofSecurityAttributes: koffi.sizeof(SECURITY_ATTRIBUTES),
    currentProcess: kernel32.func("__stdcall", "GetCurrentProcess", "void *", []),
    openProcessToken: lib.func("__stdcall", "OpenProcessToken", "bool", ["void *", "uint32", ptrOut]),
    getTokenInformation: lib.func("__stdcall", "GetTokenInformation", "bool", [
      "void *",
      "int32",
      "void *",
      "uint32",
      koffi.out(koffi.pointer("uint32")),
    ]),
    closeHandle: kernel32.func("__stdcall", "CloseHandle", "bool", ["void *"]),
    readPointer: (buffer: Buffer) => koffi.decode(buffer, "void *"),
    localFree: kernel32.func("__stdcall", "LocalFree", "void *", ["void *"]),
  };
}

/** A SID as its string form ("S-1-5-32-544"); the SID itself stays its owner's to free. */
function sidText(api: Advapi32, sid: unknown): Win32Outcome<string> {
  const text: unknown[] = [null];
  if (!api.sidToString(sid, text)) return failed(ERROR_INVALID_SID);
  try {
    return ok(api.decode16(text[0]));
  } finally {
    api.localFree(text[0]);
  }
}

const TOKEN_QUERY = 0x0008;
const TOKEN_USER = 1;

export class KoffiFileSecurityApi implements FileSecurityApi {
  async linkOnPath(path: string): Promise<string | undefined> {
    // Node's lstat reports junctions (mount points) as symbolic links on Windows, as libuv does.
    for (let p = win32.resolve(path); ; ) {
      const st = await lstat(p).catch(() => undefined);
      if (st?.isSymbolicLink()) return p;
      const parent = win32.dirname(p);
      if (parent === p) return undefined;
      p = parent;
    }
  }

  async self(): Promise<Win32Outcome<string>> {
    const api = await advapi32();
    const token: unknown[] = [null];
    if (!api.openProcessToken(api.currentProcess(), TOKEN_QUERY, token)) return failed(api.getLastError() as number);
    try {
      // TOKEN_USER is a SID pointer (into the same buffer) and its attributes; a SID is at most 68 bytes.
      const buffer = Buffer.alloc(256);
      const needed = [0];
      if (!api.getTokenInformation(token[0], TOKEN_USER, buffer, buffer.length, needed)) {
        return failed(api.getLastError() as number);
      }
      return sidText(api, api.readPointer(buffer));
    } finally {
      api.closeHandle(token[0]);
    }
  }

  async owner(path: string): Promise<Win32Outcome<string>> {
    const api = await advapi32();
    const owner: unknown[] = [null];
    const sd: unknown[] = [null];
    const rc = api.getNamedSecurityInfo(path, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, owner, null, null, null, sd);
    if (rc !== WIN32_ERROR.SUCCESS) return failed(rc as number);
    try {
      // The owner SID points into the descriptor: converted before the descriptor is freed.
      return sidText(api, owner[0]);
    } finally {
      api.localFree(sd[0]);
    }
  }

  async secure(path: string): Promise<Win32Outcome<void>> {
    const api = await advapi32();
    const sd: unknown[] = [null];
    if (!api.sddlToSd(DATA_DIR_SDDL, SDDL_REVISION_1, sd, null)) return failed(WIN32_ERROR.INVALID_SECURITY_DESCR);
    try {
      const owner: unknown[] = [null];
      const present: number[] = [0];
      const dacl: unknown[] = [null];
      const defaulted: number[] = [0];
      if (!api.sdOwner(sd[0], owner, defaulted) || !api.sdDacl(sd[0], present, dacl, defaulted) || !present[0])
        return failed(WIN32_ERROR.INVALID_SECURITY_DESCR);
      // Reset, not set: every entry below gets the owner and only what it inherits from the root, so explicit
      // entries someone added to a file inside (the way back in) are removed too.
      const info = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION;
      const rc = api.treeReset(
        path,
        SE_FILE_OBJECT,
        info,
        owner[0],
        null,
        dacl[0],
        null,
        false,
        null,
        PROGRESS_INVOKE_NEVER,
        null,
      );
      return rc === WIN32_ERROR.SUCCESS ? ok(undefined) : failed(rc as number);
    } finally {
      api.localFree(sd[0]);
    }
  }

  async createDir(path: string): Promise<Win32Outcome<void>> {
    const api = await advapi32();
    const sd: unknown[] = [null];
    if (!api.sddlToSd(DATA_DIR_SDDL, SDDL_REVISION_1, sd, null)) return failed(WIN32_ERROR.INVALID_SECURITY_DESCR);
    try {
      const attributes = { nLength: api.sizeofSecurityAttributes, lpSecurityDescriptor: sd[0], bInheritHandle: 0 };
      if (api.createDirectory(path, attributes)) return ok(undefined);
      return failed(api.getLastError() as number);
    } finally {
      api.localFree(sd[0]);
    }
  }
}
