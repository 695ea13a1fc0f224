import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { main as cloudMain } from "../../cloud/cli.ts";
import { OPERATOR_FILES } from "../../scripts/operator-files.ts";
import { USAGE as SIM_USAGE } from "../../sim/zk/cli.ts";
import type { CommandSpec } from "../../src/cli/command-spec.ts";
import { COMMAND_SPECS, SERVICE_ACTIONS } from "../../src/cli/commands.ts";

const root = new URL("../../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");

/** The text of every code span and fenced block: where the documents spell out what to type. */
function codeOf(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/```[^\n]*\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
  const prose = markdown.replace(/```[\s\S]*?```/g, "");
  const spans = [...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? "");
  // Indented blocks (the README uses them) are code too.
  const indented = [...prose.matchAll(/^(?: {4,}|\t)(bioapi .*)$/gm)].map((m) => m[1] ?? "");
  return [...blocks, ...spans, ...indented];
}

async function cloudHelp(words: string[]): Promise<string> {
  let text = "";
  await cloudMain([...words, "--help"], { stdout: (t) => (text += t), stderr: (t) => (text += t) });
  return text;
}

const specs = new Map(COMMAND_SPECS.map((s) => [s.name, s]));
const flagsOf = (spec: CommandSpec) => new Set([...spec.options.map((o) => `--${o.name}`), "--help"]);

/** Each `bioapi …` command line in the shipped documents: its command exists and every option it uses does. */
async function problemsIn(path: string): Promise<string[]> {
  const problems: string[] = [];
  for (const code of codeOf(read(path))) {
    for (const segment of code.split(/\n|\||;|&&|\s#\s/)) {
      const at = segment.search(/(?:^|[\s(])bioapi\s/);
      if (at < 0) continue;
      const words = segment.slice(at).trim().replace(/^\(/, "").split(/\s+/).slice(1);
      const [first = "", second = ""] = words;
      if (first === "--version" || first === "--help" || first === "<command>" || first === "") continue;
      const own = words.indexOf("--");
      const flags = (own >= 0 ? words.slice(0, own) : words)
        .filter((w) => /^--[a-z]/.test(w))
        .map((w) => w.replace(/[=,.:)].*$/, ""));
      let known: Set<string> | undefined;
      let help: string | undefined;
      if (first === "cloud")
        help = await cloudHelp(second === "node" || second === "config" ? words.slice(1, 3) : [second]);
      else if (first === "sim") help = SIM_USAGE;
      else if (first === "service" && SERVICE_ACTIONS[second]) known = flagsOf(SERVICE_ACTIONS[second]);
      else {
        const spec = specs.get(first);
        if (!spec) {
          problems.push(`${path}: \`bioapi ${first}\` is not a command`);
          continue;
        }
        known = flagsOf(spec);
      }
      for (const flag of flags) {
        const ok = known ? known.has(flag) : (help ?? "").includes(flag);
        if (!ok)
          problems.push(`${path}: \`bioapi ${first}${second.startsWith("-") ? "" : ` ${second}`}\` has no ${flag}`);
      }
    }
  }
  return problems;
}

test("the operator zip ships the README, operations, configuration and terminals guides", () => {
  const shipped = OPERATOR_FILES.map((f) => f.to);
  for (const doc of ["README.md", "docs/operations.md", "docs/configuration.md", "docs/terminals.md"]) {
    assert.ok(shipped.includes(doc), doc);
  }
  for (const f of OPERATOR_FILES) assert.ok(existsSync(new URL(f.from, root)), f.from);
});

test("every bioapi command and option the shipped documents name exists in the CLI", async () => {
  const docs = OPERATOR_FILES.filter((f) => f.from.endsWith(".md")).map((f) => f.from);
  const problems = (await Promise.all(docs.map(problemsIn))).flat();
  assert.deepEqual(problems, []);
});

test("the shipped documents name the log files as they are written, and never tell to run beside the service", () => {
  for (const f of OPERATOR_FILES.filter((x) => x.from.endsWith(".md"))) {
    const text = read(f.from);
    assert.doesNotMatch(text, /connector\.log\.\d|connector\.log\.1/, `${f.from}: log files are connector.N.log`);
  }
  const readme = read("packaging/README-operators.md");
  for (const topic of [/bioapi doctor/, /bioapi status --url/, /\/metrics/, /connector\.1\.log/]) {
    assert.match(readme, topic, `the README covers ${topic}`);
  }
  assert.doesNotMatch(readme, /run `bioapi run --data-dir <data dir>` in a console/, "run beside a running service");
});
