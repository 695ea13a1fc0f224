import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { build } from "esbuild";
import { koffiExactNative } from "../../scripts/koffi-native-plugin.ts";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { BioError } from "../core/errors.ts";
import { type NativeHost, nativeModulePath } from "./native.ts";

const exec = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;
const LINUX_KOFFI = join(root, "node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node");

function host(over: Partial<NativeHost>): NativeHost {
  return {
    platform: "linux",
    arch: "x64",
    execPath: "/opt/cams-bioapi/bioapi",
    env: {},
    uid: process.getuid?.(),
    asset: () => {
      throw new Error("the asset is not read");
    },
    ...over,
  };
}

describe("where the single executable loads koffi's native module from", () => {
  test("Windows: the file beside bioapi.exe, exactly; nothing is unpacked or read from the executable", async () => {
    await using dir = await tempDir();
    const exe = join(dir.path, "bioapi.exe");
    writeFileSync(join(dir.path, "koffi-win32-x64.node"), "module");
    const env = { ProgramData: join(dir.path, "pd"), BIOAPI_NATIVE_DIR: join(dir.path, "nd") };
    const file = await nativeModulePath(host({ platform: "win32", execPath: exe, env }));
    assert.equal(file, join(dir.path, "koffi-win32-x64.node"));
    assert.equal(existsSync(env.ProgramData), false, "nothing written to ProgramData");
    assert.equal(existsSync(env.BIOAPI_NATIVE_DIR), false);
  });

  test("Windows: a package unzipped without the module is refused with the fix", async () => {
    await using dir = await tempDir();
    await assert.rejects(
      nativeModulePath(host({ platform: "win32", execPath: join(dir.path, "bioapi.exe") })),
      (e: unknown) => e instanceof BioError && /koffi-win32-x64\.node is missing beside/.test(e.message),
    );
  });

  test("Linux: unpacked under its digest into this account's directory; a changed file is written again", async () => {
    await using dir = await tempDir();
    const nd = join(dir.path, "native");
    const bytes = Buffer.from("the module");
    const h = host({ env: { BIOAPI_NATIVE_DIR: nd }, asset: () => bytes });
    const file = await nativeModulePath(h);
    assert.ok(file.startsWith(`${nd}/`), file);
    assert.deepEqual(readFileSync(file), bytes);
    chmodSync(file, 0o600);
    writeFileSync(file, "planted");
    assert.equal(await nativeModulePath(h), file);
    assert.deepEqual(readFileSync(file), bytes);
  });

  test("Linux: a directory others can write, or another account's, is refused", async () => {
    await using dir = await tempDir();
    const nd = join(dir.path, "native");
    mkdirSync(nd, { mode: 0o700 });
    chmodSync(nd, 0o777);
    const asset = () => Buffer.from("m");
    await assert.rejects(nativeModulePath(host({ env: { BIOAPI_NATIVE_DIR: nd }, asset })), /alone can write/);
    chmodSync(nd, 0o700);
    await assert.rejects(
      nativeModulePath(host({ env: { BIOAPI_NATIVE_DIR: nd }, asset, uid: (process.getuid?.() ?? 0) + 1 })),
      /alone can write/,
    );
  });
});

describe("the bundle's koffi loads only the module it is given", () => {
  /** A bundle like the single executable's (koffi bundled, @koromix external, import.meta at the bundle). */
  async function bundle(dir: string, plugin: boolean): Promise<string> {
    const entry = join(dir, "entry.mjs");
    writeFileSync(
      entry,
      `import { provideKoffiNative } from ${JSON.stringify(join(root, "src/platform/native.ts"))};
if (process.env.NATIVE) provideKoffiNative(process.env.NATIVE);
const koffi = (await import("koffi")).default;
console.log("sizeof int32", koffi.sizeof("int32"));`,
    );
    const outfile = join(dir, plugin ? "with.mjs" : "without.mjs");
    await build({
      entryPoints: [entry],
      bundle: true,
      platform: "node",
      format: "esm",
      outfile,
      nodePaths: [join(root, "node_modules")],
      external: ["@koromix/*"],
      plugins: plugin ? [koffiExactNative()] : [],
      logLevel: "error",
    });
    return outfile;
  }

  /** What another local user could leave where koffi's loader looks: a package that runs on require. */
  function plant(dir: string): string {
    const marker = join(dir, "planted-ran");
    const pkg = join(dir, "node_modules/@koromix/koffi-linux-x64");
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "@koromix/koffi-linux-x64", main: "index.js" }));
    writeFileSync(
      join(pkg, "index.js"),
      `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "x"); module.exports = require(${JSON.stringify(LINUX_KOFFI)});`,
    );
    return marker;
  }

  test("without the plugin a planted package is loaded (the hole); with it, never, and the given module works", {
    timeout: 120_000,
  }, async () => {
    await using dir = await tempDir();
    const marker = plant(dir.path);
    const node = process.execPath;

    const open = await bundle(dir.path, false);
    await exec(node, [open], { cwd: dir.path });
    assert.equal(existsSync(marker), true, "koffi's own search found the planted package");

    const closed = await bundle(dir.path, true);
    rmSync(marker);
    const refused = await exec(node, [closed], { cwd: dir.path }).then(
      () => "ran",
      (e: { stderr: string }) => e.stderr,
    );
    assert.match(refused, /was not loaded by its path first/);
    assert.equal(existsSync(marker), false, "the planted package never ran");

    const given = await exec(node, [closed], { cwd: dir.path, env: { ...process.env, NATIVE: LINUX_KOFFI } });
    assert.match(given.stdout, /sizeof int32 4/);
    assert.equal(existsSync(marker), false);
  });
});
