import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { OPERATOR_FILES } from "../../scripts/operator-files.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";

const exec = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

// Packaging alone took over 180 s at load 18.
test("the linux-x64 single executable builds, answers --version with no environment, and runs the demo", {
  timeout: 900_000,
}, async () => {
  await using dir = await tempDir("bioapi-sea-");
  await exec(process.execPath, [join(root, "scripts/package.ts"), "--linux-only", "--out", dir.path], {
    timeout: 600_000,
  });
  const version = (
    JSON.parse(await import("node:fs").then((fs) => fs.readFileSync(join(root, "package.json"), "utf8"))) as {
      version: string;
    }
  ).version;
  const exe = join(dir.path, `cams-bioapi-${version}-linux-x64`, "bioapi");
  const v = await exec(exe, ["--version"], { env: {}, cwd: dir.path });
  assert.equal(v.stdout.trim(), version);
  const { stdout: listing } = await exec("unzip", ["-l", join(dir.path, `cams-bioapi-${version}-linux-x64.zip`)]);
  for (const f of ["bioapi", ...OPERATOR_FILES.map((x) => x.to)]) assert.match(listing, new RegExp(`linux-x64/${f}`));

  // The demo bundles the reference cloud, the simulator and the sqlite worker: nothing but the executable is needed.
  const demo = spawn(exe, ["demo"], { cwd: dir.path, env: { HOME: dir.path }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  demo.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  demo.stderr.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => demo.once("exit", (code) => r(code)));
  try {
    await waitFor("punches in the demo's cloud", () => /in cloud [1-9]\d*/.test(out), 30_000, 100);
    // The address the demo prints opens the page: it carries the token.
    const page = /status page (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(out)?.[1];
    assert.ok(page, out);
    // As a browser does: the token becomes a cookie on a redirect to /, which then serves the page.
    const redirect = await fetch(page, { redirect: "manual", signal: AbortSignal.timeout(5000) });
    const cookie = redirect.headers.get("set-cookie")?.split(";")[0];
    assert.ok(cookie && redirect.status >= 300 && redirect.status < 400, `${redirect.status} ${cookie}`);
    const home = await fetch(new URL("/", page), { headers: { cookie }, signal: AbortSignal.timeout(5000) });
    assert.equal(home.status, 200);
    await home.body?.cancel();
  } finally {
    demo.kill("SIGINT");
  }
  await exited;
  assert.match(out, /Stopped\. Written \d+ .* in cloud \d+ \(0 duplicate/);
});
