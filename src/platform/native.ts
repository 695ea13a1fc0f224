import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { atomicWrite } from "../core/atomic-write.ts";
import { BioError } from "../core/errors.ts";

type Koffi = typeof import("koffi");

/** Where the single executable's bundle finds koffi's native module (scripts/koffi-native-plugin.ts reads it). */
export const KOFFI_NATIVE_GLOBAL = "__bioapiKoffiNative";

let cached: Promise<Koffi> | undefined;

/** Whether this process is the single-file executable (node:sea exists only on Node >= 20 builds with SEA). */
export async function isSingleExecutable(): Promise<boolean> {
  try {
    const sea = await import("node:sea");
    return sea.isSea();
  } catch {
    return false;
  }
}

/** What nativeModulePath needs from the process, so the tests can play the single executable. */
export interface NativeHost {
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  readonly execPath: string;
  readonly env: NodeJS.ProcessEnv;
  readonly uid: number | undefined;
  /** The module's bytes embedded in the executable (Linux), or undefined when it was built without them. */
  readonly asset: (key: string) => Buffer | undefined;
}

/**
 * The one file koffi's native module is loaded from. Nothing checks it before the load, so the place itself must be
 * one only the caller's side can write:
 *
 * - Windows: `koffi-win32-x64.node` beside bioapi.exe, shipped in the zip. The executable's folder is already the
 *   root of trust: whoever can write there replaces bioapi.exe (or plants a DLL it loads from its own folder), so
 *   the module adds no file anyone else could change. Unpacking into ProgramData instead cannot be made safe: the
 *   installer itself needs koffi to check who owns that folder, before it is known to be safe, and a check of the
 *   file followed by its load leaves the moment between them to whoever can write the folder.
 * - Linux: unpacked from the executable into the state directory (systemd's, 0700, the service user's) or a
 *   per-user directory, which must be this account's and not writable by group or others; the name carries the
 *   SHA-256, and a file that does not match is written again.
 */
export async function nativeModulePath(host: NativeHost): Promise<string> {
  const key = `koffi-${host.platform}-${host.arch}.node`;
  if (host.platform === "win32") {
    const beside = join(dirname(host.execPath), key);
    if (!existsSync(beside)) {
      throw new BioError("SERVICE", `${key} is missing beside ${host.execPath}.`, {
        hint: "Unzip the whole package: bioapi.exe loads its native module from its own folder (Program Files).",
      });
    }
    return beside;
  }
  const bytes = host.asset(key);
  if (!bytes) {
    throw new BioError("SERVICE", `This executable was built without ${key}.`, {
      hint: "Use the executable built for this platform (npm run package builds one per platform).",
    });
  }
  const dir = nativeDir(host);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || (host.uid !== undefined && st.uid !== host.uid) || (st.mode & 0o022) !== 0) {
    throw new BioError(
      "SERVICE",
      `${dir} is not a directory this account alone can write; koffi is not loaded from it.`,
      {
        hint: `Remove it (another account may have created it) or set BIOAPI_NATIVE_DIR to a directory of this account's with mode 0700.`,
      },
    );
  }
  const digest = createHash("sha256").update(bytes).digest("hex");
  const file = join(dir, digest.slice(0, 16), key);
  const intact = existsSync(file) && createHash("sha256").update(readFileSync(file)).digest("hex") === digest;
  if (!intact) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // Read and execute for the owner only; no write bit, so a stray write cannot patch the loaded module.
    await atomicWrite(file, bytes, { mode: 0o500 });
  }
  return file;
}

function nativeDir(host: NativeHost): string {
  if (host.env.BIOAPI_NATIVE_DIR) return host.env.BIOAPI_NATIVE_DIR;
  if (host.env.STATE_DIRECTORY) return join(host.env.STATE_DIRECTORY.split(":")[0] ?? "", "native");
  return join(tmpdir(), `cams-bioapi-native-${host.uid ?? 0}`);
}

async function seaHost(): Promise<NativeHost> {
  const sea = await import("node:sea");
  return {
    platform: process.platform,
    arch: process.arch,
    execPath: process.execPath,
    env: process.env,
    uid: process.getuid?.(),
    asset: (key) => {
      try {
        return Buffer.from(sea.getRawAsset(key));
      } catch {
        return undefined;
      }
    },
  };
}

/** Loads exactly `file` as koffi's native module and hands it to the bundle's koffi (see koffi-native-plugin.ts). */
export function provideKoffiNative(file: string): void {
  const module = { exports: {} as unknown };
  process.dlopen(module, file);
  (globalThis as Record<string, unknown>)[KOFFI_NATIVE_GLOBAL] = module.exports;
}

/** koffi, loaded on first use only: the demo and most commands never need native code. */
export function loadKoffi(): Promise<Koffi> {
  cached ??= (async () => {
    if (await isSingleExecutable()) provideKoffiNative(await nativeModulePath(await seaHost()));
    const mod = (await import("koffi")) as Koffi & { default?: Koffi };
    return (mod.default ?? mod) as Koffi;
  })();
  return cached;
}
