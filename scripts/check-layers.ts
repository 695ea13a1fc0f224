/**
 * `npm run layers`: fails on an import that runs up a floor, across a floor, between sibling kinds, out of src/ or
 * into it from cloud/ or sim/, or in a circle. `--write-docs` rewrites the generated block of docs/architecture.md.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { DOCS_BEGIN, DOCS_END, docsBlock } from "./layers/house-picture.ts";
import { checkImports, SCRIPT } from "./layers/import-check.ts";

const root = join(import.meta.dirname, "..");

/**
 * Product files of src/ (tests sit beside them but stand outside the house), all of cloud/ and sim/, and the test
 * helpers, which cloud/ and sim/ may share only while they reach no product code.
 */
export function readTree(base = root): Map<string, string> {
  const tree = new Map<string, string>();
  const walk = (dir: string, keepTests: boolean) => {
    for (const entry of readdirSync(join(base, dir), { withFileTypes: true })) {
      const path = posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(path, keepTests);
      else if (SCRIPT.test(entry.name) && (keepTests || !/\.test\.[cm]?[jt]s$/.test(entry.name)))
        tree.set(path, readFileSync(join(base, path), "utf8"));
    }
  };
  walk("src", false);
  walk("cloud", true);
  walk("sim", true);
  walk("test/helpers", true);
  return tree;
}

function writeDocs(): void {
  const path = join(root, "docs", "architecture.md");
  const text = readFileSync(path, "utf8");
  const a = text.indexOf(DOCS_BEGIN);
  const b = text.indexOf(DOCS_END);
  if (a < 0 || b < a) throw new Error(`docs/architecture.md has no ${DOCS_BEGIN} … ${DOCS_END} block.`);
  writeFileSync(path, text.slice(0, a) + docsBlock() + text.slice(b + DOCS_END.length));
}

if (import.meta.main) {
  if (process.argv.includes("--write-docs")) writeDocs();
  const violations = checkImports(readTree());
  for (const v of violations) console.error(`${v.rule}: ${v.from} → ${v.to}\n  ${v.detail}`);
  if (violations.length > 0) {
    console.error(`${violations.length} import(s) break the floors in scripts/layers/floors.ts.`);
    process.exitCode = 1;
  } else console.log("Imports keep to the floors: no upward, sideways or circular import.");
}
