/**
 * One description per command: its help text and its parseArgs options both come from it, so the two cannot
 * disagree, and every command's help has the same shape (Usage, description, Options with defaults, notes) within
 * 100 columns.
 */

export interface OptionSpec {
  /** Without the dashes: "data-dir". */
  readonly name: string;
  /** The value's placeholder ("DIR"); absent for a flag. */
  readonly value?: string;
  readonly short?: string;
  readonly text: string;
  /** Parsed when the option is absent, and shown in the help. */
  readonly default?: string;
  /** Shown in the help when the default is computed (a path, an environment variable) rather than a constant. */
  readonly defaultText?: string;
}

export interface CommandSpec {
  /** The words after `bioapi`: "status", "service install". */
  readonly name: string;
  /** One line for the command list of `bioapi --help`. */
  readonly summary: string;
  /** Synopsis forms after `bioapi <name>`; default `[options]`. */
  readonly forms?: readonly string[];
  readonly description: string;
  readonly options: readonly OptionSpec[];
  /** Paragraphs after the options: exit codes, examples. */
  readonly notes?: readonly string[];
}

export const HELP_WIDTH = 100;

const HELP_OPTION: OptionSpec = { name: "help", short: "h", text: "print this text" };

type ParseOption =
  | { type: "string"; short?: string; default?: string }
  | { type: "boolean"; short?: string; default?: boolean };

type ParseOptionOf<O extends OptionSpec> = O extends { readonly value: string }
  ? O extends { readonly default: string }
    ? { type: "string"; short?: string; default: string }
    : { type: "string"; short?: string }
  : { type: "boolean"; short?: string; default: boolean };

/** The parseArgs options of a spec, typed so that `values` knows each option's type. */
export type OptionsOf<S extends CommandSpec> = {
  [O in S["options"][number] as O["name"]]: ParseOptionOf<O>;
} & { help: { type: "boolean"; short?: string; default: boolean } };

/** The parseArgs `options` of a command, `--help` included. */
export function optionsOf<const S extends CommandSpec>(spec: S): OptionsOf<S> {
  const out: Record<string, ParseOption> = {};
  for (const o of [...spec.options, HELP_OPTION]) {
    const short = o.short === undefined ? {} : { short: o.short };
    out[o.name] =
      o.value === undefined
        ? { type: "boolean", default: false, ...short }
        : { type: "string", ...short, ...(o.default === undefined ? {} : { default: o.default }) };
  }
  return out as OptionsOf<S>;
}

/** Words wrapped to `width`, every line after the first indented by `indent`. */
export function wrap(text: string, width: number, indent = ""): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line === "") line = `${lines.length > 0 ? indent : ""}${word}`;
    else if (line.length + 1 + word.length > width) {
      lines.push(line);
      line = `${indent}${word}`;
    } else line = `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines.join("\n");
}

function flag(o: OptionSpec): string {
  const long = `--${o.name}${o.value ? ` ${o.value}` : ""}`;
  return o.short ? `-${o.short}, ${long}` : long;
}

export function renderHelp(spec: CommandSpec): string {
  const forms = spec.forms ?? ["[options]"];
  const head = forms.map((f, i) => `${i === 0 ? "Usage: " : "       "}bioapi ${spec.name}${f ? ` ${f}` : ""}`);
  const options = [...spec.options, HELP_OPTION];
  const column = Math.min(26, Math.max(...options.map((o) => flag(o).length)) + 2);
  const optionLines = options.map((o) => {
    const shown = o.defaultText ?? o.default;
    const text = shown === undefined ? o.text : `${o.text} (default: ${shown})`;
    const left = `  ${flag(o)}`;
    const pad = left.length + 1 > column + 2 ? `\n${" ".repeat(column + 2)}` : " ".repeat(column + 2 - left.length);
    return `${left}${pad}${wrap(text, HELP_WIDTH - column - 2, "").replace(/\n/g, `\n${" ".repeat(column + 2)}`)}`;
  });
  return [
    head.join("\n"),
    spec.description
      .split("\n\n")
      .map((p) => wrap(p, HELP_WIDTH))
      .join("\n\n"),
    `Options:\n${optionLines.join("\n")}`,
    ...(spec.notes ?? []).map((p) => wrap(p, HELP_WIDTH)),
  ].join("\n\n");
}

/** `bioapi --help`: every command with its summary, from the same descriptions. */
export function renderIndex(title: string, specs: readonly CommandSpec[], extra: readonly [string, string][]): string {
  const rows: [string, string][] = [...specs.map((s): [string, string] => [s.name, s.summary]), ...extra];
  const width = Math.max(...rows.map(([name]) => name.length)) + 2;
  const lines = rows.map(([name, summary]) => `  bioapi ${name.padEnd(width)}${summary}`);
  return `${title}\n\nUsage: bioapi <command> [options]\n\n${lines.join("\n")}\n\nRun bioapi <command> --help for its options.`;
}
