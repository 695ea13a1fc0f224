import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { readTree } from "../../scripts/check-layers.ts";
import { DOCS_BEGIN, DOCS_END, docsBlock } from "../../scripts/layers/house-picture.ts";
import { checkImports, importsOf, readImports, type Violation } from "../../scripts/layers/import-check.ts";

const real = readTree();
const key = (v: Violation) => `${v.rule} ${v.from} ${v.to}`;
const present = new Set(checkImports(real).map(key));

/** What a change adds to what the tree already has, so each planted case is judged on its own. */
const added = (violations: Violation[]) => violations.filter((v) => !present.has(key(v)));

/** The real tree with one file's text extended by `line`: what a careless change would look like. */
function planted(file: string, line: string): Violation[] {
  const text = real.get(file);
  assert.ok(text !== undefined, `${file} exists in the tree`);
  const tree = new Map(real);
  tree.set(file, `${line}\n${text}`);
  return added(checkImports(tree));
}

function only(violations: Violation[]): Violation {
  assert.equal(violations.length, 1, JSON.stringify(violations, null, 2));
  return violations[0] as Violation;
}

describe("the floors of src/", () => {
  test("the tree as it is keeps to the floors: nothing upward, sideways or in a circle", () => {
    assert.ok(real.size > 100, "the walk found the product files");
    assert.deepEqual(checkImports(real), []);
  });

  test("a planted upward import is refused: core/ reaching for the composition root", () => {
    const found = planted("src/core/clock.ts", 'import type { Connector } from "../app/connector.ts";');
    // The composition root imports the clock, so the same arrow also closes a circle through the house.
    assert.deepEqual(
      found.map((f) => f.rule),
      ["upward", "circle"],
    );
    const v = found[0] as Violation;
    assert.equal(v.to, "src/app/connector.ts");
    assert.match(v.detail, /core\/ \(floor 0\) may not import app\/ \(floor 8\)/);
  });

  test("two folders on one floor never import each other: secrets/ and service/", () => {
    const v = only(
      planted("src/secrets/enrollment.ts", 'import { CONNECTOR_SERVICE } from "../service/windows/service-names.ts";'),
    );
    assert.equal(v.rule, "same-floor");
  });

  test("a source kind never uses its sibling: zk/ reaching into database/", () => {
    const v = only(
      planted("src/sources/zk/zk-source.ts", 'import { openSqlClient } from "../database/open-client.ts";'),
    );
    assert.equal(v.rule, "sibling-kind");
  });

  test("src/ never imports the reference cloud, and the simulator never imports src/", () => {
    assert.equal(only(planted("src/link/cloud-client.ts", 'import "../../cloud/server.ts";')).rule, "outside-src");
    const sim = [...real.keys()].find((f) => f.startsWith("sim/"));
    assert.ok(sim);
    assert.equal(only(planted(sim, 'import { punchId } from "../../src/core/punch.ts";')).rule, "into-src");
  });

  test("a circle is found even inside one folder, and named file by file", () => {
    const tree = new Map(real);
    tree.set("src/core/a-one.ts", 'import { two } from "./a-two.ts";\nexport const one = 1;');
    tree.set("src/core/a-two.ts", 'import { one } from "./a-one.ts";\nexport const two = one;');
    const v = only(added(checkImports(tree)));
    assert.equal(v.rule, "circle");
    assert.match(v.detail, /src\/core\/a-one\.ts → src\/core\/a-two\.ts/);
  });

  test("a folder with no floor is refused, so a new folder must take its place in the table", () => {
    const tree = new Map(real);
    tree.set("src/extras/thing.ts", 'import { sleep } from "../core/abort.ts";');
    assert.equal(only(added(checkImports(tree))).rule, "unknown-folder");
  });

  test("every kind of import is read: type-only, dynamic, re-export, side effect, multi-line", () => {
    const text = [
      'import type { A } from "./a.ts";',
      'const b = await import("./b.ts");',
      'export { c } from "../c.ts";',
      'import "./d.ts";',
      "import {\n  e,\n  type F,\n} from './e.ts';",
      'import { g } from "node:fs";',
    ].join("\n");
    assert.deepEqual(importsOf(text).sort(), ["../c.ts", "./a.ts", "./b.ts", "./d.ts", "./e.ts"]);
  });

  test("a comment cannot hide an arrow, and a commented-out import is none", () => {
    const text = [
      "import {",
      "  a, // the one we need",
      "  /* and */ b,",
      '} from "./ab.ts";',
      'const c = await import(/* lazily */ "./c.ts");',
      "const d = await import(`./d.ts`);",
      '// import { gone } from "./gone.ts";',
      '/* import "./also-gone.ts"; */',
      'const url = new URL("./worker.mjs", import.meta.url);',
      'const data = new URL("../../package.json", import.meta.url);',
      'const e = import.meta.resolve("./e.ts");',
    ].join("\n");
    assert.deepEqual(importsOf(text).sort(), ["./ab.ts", "./c.ts", "./d.ts", "./e.ts", "./worker.mjs"]);
  });

  test("a load no reader can follow is refused: a computed import() or require()", () => {
    assert.deepEqual(
      readImports("const m = await import(name);\nconst r = createRequire(import.meta.url);").unreadable,
      ["import(name)", "createRequire("],
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the planted line is source text with a substitution.
    const v = only(planted("src/core/clock.ts", 'const kind = "zk";\nawait import(`../sources/${kind}/x.ts`);'));
    assert.equal(v.rule, "unreadable");
  });

  test("code for one operating system never loads code for the other, across folders too", () => {
    const v = only(
      planted("src/service/linux/units.ts", 'import type { ScmPort } from "../../platform/windows/scm-port.ts";'),
    );
    assert.equal(v.rule, "other-os");
  });

  test("cloud/ and sim/ import only themselves and helpers that reach no product code", () => {
    const cloud = [...real.keys()].find((f) => f.startsWith("cloud/") && !f.includes("/", 6));
    assert.ok(cloud);
    assert.equal(only(planted(cloud, 'import { runDemo } from "../demo/demo.ts";')).rule, "outside-tree");
    const through = only(planted(cloud, 'import { e2e } from "../test/helpers/e2e-harness.ts";'));
    assert.equal(through.rule, "into-src");
    assert.match(through.detail, /reaches src\//);
    assert.deepEqual(added(checkImports(new Map(real))), [], "a helper that reaches no product code is allowed");
  });

  test("docs/architecture.md shows the table and the picture drawn from the same data", () => {
    const doc = readFileSync(join(import.meta.dirname, "../../docs/architecture.md"), "utf8");
    const a = doc.indexOf(DOCS_BEGIN);
    const b = doc.indexOf(DOCS_END);
    assert.ok(a >= 0 && b > a, "the generated block is in docs/architecture.md");
    assert.equal(doc.slice(a, b + DOCS_END.length), docsBlock(), "run: npm run layers -- --write-docs");
  });
});
