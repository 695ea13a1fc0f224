import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { main as cloudMain } from "../../cloud/cli.ts";
import type { CliIo } from "../../src/cli/cli-io.ts";
import { HELP_WIDTH } from "../../src/cli/command-spec.ts";
import { COMMAND_SPECS, SERVICE_ACTIONS } from "../../src/cli/commands.ts";
import { main } from "../../src/cli/main.ts";

async function productHelp(argv: string[]): Promise<{ code: number; text: string }> {
  const out: string[] = [];
  const io: CliIo = { out: (t) => out.push(t), err: (t) => out.push(t), stdin: new PassThrough(), env: {} };
  return { code: await main(argv, io), text: out.join("\n") };
}

async function cloudHelp(argv: string[]): Promise<{ code: number; text: string }> {
  let text = "";
  const code = await cloudMain(argv, { stdout: (t) => (text += t), stderr: (t) => (text += t) });
  return { code, text };
}

/** Every help text the operator can ask for, by the command line that prints it. */
async function allHelp(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const take = async (argv: string[], run = productHelp) => {
    const { code, text } = await run(argv);
    assert.equal(code, 0, `${argv.join(" ")} exits 0`);
    out[`bioapi ${run === cloudHelp ? "cloud " : ""}${argv.join(" ")}`] = text.trimEnd();
  };
  await take(["--help"]);
  for (const spec of COMMAND_SPECS.filter((s) => s.name !== "demo")) await take([...spec.name.split(" "), "--help"]);
  for (const action of Object.keys(SERVICE_ACTIONS)) await take(["service", action, "--help"]);
  out["bioapi demo --help"] = (await import("../../demo/demo.ts")).DEMO_USAGE;
  await take(["--help"], cloudHelp);
  for (const command of [["serve"], ["node", "add"], ["config", "set"], ["punches"]]) {
    await take([...command, "--help"], cloudHelp);
  }
  return out;
}

test("every help text has a Usage header and fits in 100 columns; each service action has its own", async () => {
  const help = await allHelp();
  for (const [command, text] of Object.entries(help)) {
    if (command !== "bioapi --help") assert.match(text, /^Usage: bioapi /, `${command} starts with Usage:`);
    for (const line of text.split("\n"))
      assert.ok(line.length <= HELP_WIDTH, `${command}: ${line.length} columns: ${line}`);
  }
  assert.notEqual(help["bioapi service install --help"], help["bioapi service --help"]);
  assert.match(
    help["bioapi run --help"] ?? "",
    /--data-dir DIR +the connector.s data directory \(default: \$BIOAPI_DATA_DIR, else\s+\.\/\.data\/connector\)/,
  );
  assert.match(help["bioapi service --help"] ?? "", /default: \/var\/lib\/cams-bioapi on\s+Linux/);
});

test("help snapshot (update with node --test --test-update-snapshots test/cli/help.test.ts)", async (t) => {
  // Stored as the text a terminal shows, so a change reads as a diff of the help itself.
  const asText = (v: unknown) =>
    Object.entries(v as Record<string, string>)
      .map(([command, text]) => `$ ${command}\n${text}`)
      .join("\n\n");
  t.assert.snapshot(await allHelp(), { serializers: [asText] });
});

test("the demo's --keep is explained, and --manager upstart is named as a bad manager, not an unknown action", async () => {
  const { DEMO_USAGE } = await import("../../demo/demo.ts");
  assert.match(DEMO_USAGE, /--keep +keep the demo's temporary directory/);
  const upstart = await productHelp(["service", "install", "--manager", "upstart", "--dry-run"]);
  assert.equal(upstart.code, 2);
  assert.match(upstart.text, /--manager must be systemd, windows or process, not "upstart"/);
  assert.doesNotMatch(upstart.text, /Unknown service action/);
});
