import { posix } from "node:path";
import { FLOORS, INDEPENDENT_TREES, KIND_FOLDERS } from "./floors.ts";

/** One import the house does not allow, with the rule it breaks. */
export interface Violation {
  readonly from: string;
  readonly to: string;
  readonly rule: "upward" | "same-floor" | "sibling-kind" | "outside-src" | "into-src" | "unknown-folder" | "circle";
  readonly detail: string;
}

/** Repository-relative posix paths → file text. Only .ts/.mjs product files; the caller leaves tests out. */
export type SourceTree = ReadonlyMap<string, string>;

const SPECIFIER =
  /(?:^|[^\w.])(?:import|export)\s*(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?\(?\s*["'](\.{1,2}\/[^"']+)["']/g;

/** The relative specifiers a file imports, static and dynamic, type-only included (a type still ties two floors). */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(SPECIFIER)) if (m[1]) out.push(m[1]);
  return out;
}

const floorOf = new Map<string, number>(FLOORS.flatMap((f) => f.folders.map((d) => [d, f.floor] as const)));

interface Place {
  readonly tree: string;
  /** For src/: the top folder (floor) and, in a kind folder, the kind. */
  readonly folder?: string;
  readonly kind?: string;
}

function placeOf(path: string): Place {
  const parts = path.split("/");
  const tree = parts[0] ?? "";
  if (tree !== "src") return { tree };
  const folder = parts.length > 2 ? parts[1] : undefined;
  const kind =
    folder && (KIND_FOLDERS as readonly string[]).includes(folder) && parts.length > 3 ? parts[2] : undefined;
  return { tree, ...(folder ? { folder } : {}), ...(kind ? { kind } : {}) };
}

function edgeViolation(from: string, to: string): Violation | undefined {
  const a = placeOf(from);
  const b = placeOf(to);
  const v = (rule: Violation["rule"], detail: string): Violation => ({ from, to, rule, detail });
  if ((INDEPENDENT_TREES as readonly string[]).includes(a.tree) && b.tree === "src")
    return v("into-src", `${a.tree}/ shares no code with src/: it exists to check the product independently.`);
  if (a.tree !== "src") return undefined;
  if (b.tree !== "src") return v("outside-src", `src/ never imports ${b.tree}/.`);
  if (!a.folder || !b.folder) return v("unknown-folder", "every file of src/ sits in a floor's folder.");
  const fa = floorOf.get(a.folder);
  const fb = floorOf.get(b.folder);
  if (fa === undefined) return v("unknown-folder", `src/${a.folder}/ has no floor in scripts/layers/floors.ts.`);
  if (fb === undefined) return v("unknown-folder", `src/${b.folder}/ has no floor in scripts/layers/floors.ts.`);
  if (a.folder === b.folder) {
    if (a.kind && b.kind && a.kind !== b.kind)
      return v(
        "sibling-kind",
        `src/${a.folder}/${a.kind}/ may not use its sibling ${b.kind}/; share through src/${a.folder}/.`,
      );
    return undefined;
  }
  if (fb > fa) return v("upward", `${a.folder}/ (floor ${fa}) may not import ${b.folder}/ (floor ${fb}).`);
  if (fb === fa) return v("same-floor", `${a.folder}/ and ${b.folder}/ share floor ${fa} and never import each other.`);
  return undefined;
}

/** Every strongly connected group of two or more files (Tarjan), each reported once as a circle. */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const on = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v) ?? 0, idx.get(w) ?? 0));
    }
    if (low.get(v) === idx.get(v)) {
      const group: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        on.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) out.push(group.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

/** Checks a tree against the floors: wrong-way arrows first, then circles among src/ files. */
export function checkImports(tree: SourceTree): Violation[] {
  const violations: Violation[] = [];
  const graph = new Map<string, string[]>();
  for (const [from, text] of tree) {
    const targets: string[] = [];
    for (const spec of importsOf(text)) {
      const to = posix.normalize(posix.join(posix.dirname(from), spec));
      const bad = edgeViolation(from, to);
      if (bad) violations.push(bad);
      if (tree.has(to)) targets.push(to);
    }
    if (from.startsWith("src/")) graph.set(from, targets);
  }
  for (const group of circles(graph))
    violations.push({
      from: group[0] ?? "",
      to: group.slice(1).join(", "),
      rule: "circle",
      detail: `these files import each other in a circle: ${group.join(" → ")}.`,
    });
  return violations;
}
