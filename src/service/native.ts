import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { atomicWrite } from "../core/atomic-write.ts";
import { BioError } from "../core/errors.ts";

type Koffi = typeof import("koffi");

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

/**
 * Where the single executable unpacks koffi's native module. It must be a directory only administrators can write
 * (a service loading a DLL from a user-writable temp dir is a DLL-planting hole), so ProgramData on Windows and
 * the state directory on Linux; the file name carries its SHA-256, and the bytes are checked before every load.
 */
function nativeDir(): string {
  if (process.env.BIOAPI_NATIVE_DIR) return process.env.BIOAPI_NATIVE_DIR;
  if (process.platform === "win32") return join(process.env.ProgramData ?? "C:\\ProgramData", "CamsBioApi", "native");
  if (process.env.STATE_DIRECTORY) return join(process.env.STATE_DIRECTORY.split(":")[0] ?? "", "native");
  return join(tmpdir(), `cams-bioapi-native-${process.getuid?.() ?? 0}`);
}

async function unpackFromExecutable(): Promise<void> {
  const sea = await import("node:sea");
  const key = `koffi-${process.platform}-${process.arch}.node`;
  let bytes: Buffer;
  try {
    bytes = Buffer.from(sea.getRawAsset(key));
  } catch (error) {
    throw new BioError("SERVICE", `This executable was built without ${key}.`, {
      cause: error,
      hint: "Use the executable built for this platform (npm run package builds one per platform).",
    });
  }
  const digest = createHash("sha256").update(bytes).digest("hex");
  const root = join(nativeDir(), digest.slice(0, 16));
  const triplet = `${process.platform}_${process.arch}`;
  const file = join(root, "koffi", triplet, "koffi.node");
  const intact = existsSync(file) && createHash("sha256").update(readFileSync(file)).digest("hex") === digest;
  if (!intact) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // Read and execute for the owner only; no write bit, so a stray write cannot patch the loaded module.
    await atomicWrite(file, bytes, { mode: 0o500 });
  }
  // koffi's loader also searches <resourcesPath>/koffi/<triplet>/koffi.node (a path meant for Electron apps).
  (process as { resourcesPath?: string }).resourcesPath = root;
}

/** koffi, loaded on first use only: the demo and most commands never need native code. */
export function loadKoffi(): Promise<Koffi> {
  cached ??= (async () => {
    if (await isSingleExecutable()) await unpackFromExecutable();
    const mod = (await import("koffi")) as Koffi & { default?: Koffi };
    return (mod.default ?? mod) as Koffi;
  })();
  return cached;
}
