import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { startCloud } from "./cloud-server.ts";
import { CloudStore } from "./cloud-store.ts";
import { issueSentence } from "./config-rules.ts";
import { type Fault, FaultInjector, ROUTES } from "./fault-injector.ts";
import { ConfigInvalidError } from "./validate-config.ts";

/** Where output goes; tests pass their own to capture it, and an abort signal to end `serve`. */
export interface CliIo {
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
  readonly signal?: AbortSignal;
}

const USAGE = `Usage: bioapi cloud <command> [options]

The reference cloud of docs/protocol.md, for development, tests and rehearsing outages.

Commands:
  serve [--data-dir DIR] [--host 127.0.0.1] [--port 8080] [--faults FILE]
                                          run the cloud until SIGINT/SIGTERM
  node add [--data-dir DIR] [--json]      register a node; prints its id and secret once
  config set NODE FILE [--data-dir DIR]   validate and publish a configuration (JSON)
  punches NODE [--json] [--limit N] [--data-dir DIR]
                                          punch counts per device, duplicates

The data directory defaults to $BIOAPI_CLOUD_DATA, else ./.data/cloud.
Run \`bioapi cloud <command> --help\` for one command.
`;

const HELP: Record<string, string> = {
  serve: `Usage: bioapi cloud serve [--data-dir DIR] [--host HOST] [--port PORT] [--faults FILE]

Runs the reference cloud and prints its URL. Stops cleanly on SIGINT or SIGTERM.
  --host     address to listen on (default 127.0.0.1)
  --port     port (default 8080; 0 lets the OS pick)
  --faults   a JSON list of faults to inject, to rehearse outages (docs/operations.md):
             [{"route": "punches", "status": 503, "retryAfterSeconds": 30, "times": 20},
              {"route": "any", "delayMs": 20000, "times": 3}]
             route: health, config, punches, status or any; a fault answers its next "times"
             requests on that route, in the order listed
`,
  "node add": `Usage: bioapi cloud node add [--data-dir DIR] [--json]

Registers a node and prints its id and secret. The secret is shown this once: give it to the
connector now.
  --json   print {"nodeId", "secret"}
`,
  "config set": `Usage: bioapi cloud config set NODE FILE [--data-dir DIR]

Validates FILE (JSON) with the connector's own rules (docs/config.schema.json and
cloud/config-rules.ts, the checked copy of the connector's), stores it encrypted for NODE as the
next version, and prints that version and the data directory. When the connector would refuse it,
nothing is stored and the sentence the connector would log is printed.
`,
  punches: `Usage: bioapi cloud punches NODE [--json] [--limit N] [--data-dir DIR]

Prints the punches received from NODE per device, the total, and duplicate deliveries.
  --json    print {total, duplicateDeliveries, byDevice, rejected, punches: [...], truncated}
  --limit   punches listed with --json (default 100; 0 lists all); when there are more,
            "truncated" is true and a line on stderr says so
`,
};

class UsageError extends Error {
  override readonly name = "UsageError";
}

function dataDirOf(value: string | undefined): string {
  return resolve(value ?? process.env.BIOAPI_CLOUD_DATA ?? "./.data/cloud");
}

const COMMON = {
  "data-dir": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Runs one cloud admin command; argv excludes the word "cloud". Returns the exit code. */
export async function main(argv: string[], io: CliIo = {}): Promise<number> {
  const out = io.stdout ?? ((text: string) => process.stdout.write(text));
  const err = io.stderr ?? ((text: string) => process.stderr.write(text));
  const [first, second] = argv;
  const command = first === "node" || first === "config" ? `${first} ${second ?? ""}`.trim() : (first ?? "");
  const rest = argv.slice(command.split(" ").length);
  if (command === "" || command === "--help" || command === "-h" || command === "help") {
    (command === "" ? err : out)(USAGE);
    return command === "" ? 2 : 0;
  }
  try {
    switch (command) {
      case "serve":
        return await serve(rest, out, err, io.signal);
      case "node add":
        return nodeAdd(rest, out);
      case "config set":
        return configSet(rest, out, err);
      case "punches":
        return punches(rest, out, err);
      default:
        err(`unknown command: ${argv.join(" ")}\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      err(`${(error as Error).message}\n\n${HELP[command] ?? USAGE}`);
      return 2;
    }
    err(`error: ${(error as Error).message}\n`);
    return 1;
  }
}

async function serve(
  args: string[],
  out: (text: string) => void,
  err: (text: string) => void,
  signal: AbortSignal | undefined,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...COMMON, host: { type: "string" }, port: { type: "string" }, faults: { type: "string" } },
    strict: true,
  });
  if (values.help) {
    out(HELP.serve ?? "");
    return 0;
  }
  const port = Number(values.port ?? "8080");
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${values.port} is not a port`);
  const faults = values.faults === undefined ? [] : readFaults(values.faults);
  const dataDir = dataDirOf(values["data-dir"]);
  const cloud = await startCloud({ dataDir, host: values.host ?? "127.0.0.1", port });
  for (const fault of faults) cloud.injectFault(fault);
  out(`cloud listening on ${cloud.url} (data in ${dataDir})\n`);
  if (faults.length > 0) out(`${faults.length} faults from ${values.faults} wait for their requests\n`);
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      signal?.removeEventListener("abort", stop);
      done();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    if (signal?.aborted) stop();
    else signal?.addEventListener("abort", stop);
  });
  await cloud.close();
  err("cloud stopped\n");
  return 0;
}

/** The --faults file: every entry checked before the cloud starts, so a typo fails loudly, not silently. */
function readFaults(file: string): Fault[] {
  let list: unknown;
  try {
    list = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new UsageError(`--faults ${file}: cannot read it as JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(list)) throw new UsageError(`--faults ${file}: expected a JSON list of faults`);
  const routes: readonly string[] = [...ROUTES.filter((r) => r !== "other"), "any"];
  const injector = new FaultInjector();
  return list.map((entry: unknown, i) => {
    const f = entry as Partial<Record<keyof Fault, unknown>>;
    const where = `--faults ${file}: entry ${i}`;
    if (typeof entry !== "object" || entry === null) throw new UsageError(`${where} is not an object`);
    const unknown = Object.keys(f).filter(
      (k) => !["route", "status", "retryAfterSeconds", "delayMs", "times"].includes(k),
    );
    if (unknown.length > 0) throw new UsageError(`${where} has unknown keys: ${unknown.join(", ")}`);
    if (typeof f.route !== "string" || !routes.includes(f.route)) {
      throw new UsageError(`${where}: route must be one of ${routes.join(", ")}`);
    }
    for (const key of ["status", "retryAfterSeconds", "delayMs"] as const) {
      if (f[key] !== undefined && (typeof f[key] !== "number" || !Number.isInteger(f[key]) || (f[key] as number) < 0)) {
        throw new UsageError(`${where}: ${key} must be a whole number`);
      }
    }
    const fault = f as Fault;
    try {
      injector.inject(fault);
    } catch (error) {
      throw new UsageError(`${where}: ${(error as Error).message}`);
    }
    return fault;
  });
}

function nodeAdd(args: string[], out: (text: string) => void): number {
  const { values } = parseArgs({ args, options: { ...COMMON, json: { type: "boolean" } }, strict: true });
  if (values.help) {
    out(HELP["node add"] ?? "");
    return 0;
  }
  const store = CloudStore.open(dataDirOf(values["data-dir"]));
  try {
    const { nodeId, secret } = store.addNode();
    if (values.json) out(`${JSON.stringify({ nodeId, secret })}\n`);
    else {
      out(`node id: ${nodeId}\nsecret:  ${secret}\n\n`);
      out("The secret is shown only this once. Enter both on the connector now; the cloud keeps it encrypted.\n");
    }
    return 0;
  } finally {
    store.close();
  }
}

function configSet(args: string[], out: (text: string) => void, err: (text: string) => void): number {
  const { values, positionals } = parseArgs({ args, options: COMMON, allowPositionals: true, strict: true });
  if (values.help) {
    out(HELP["config set"] ?? "");
    return 0;
  }
  const [nodeId, file] = positionals;
  if (nodeId === undefined || file === undefined || positionals.length > 2) {
    throw new UsageError("config set needs a NODE id and a FILE");
  }
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    err(`error: cannot read ${file} as JSON: ${(error as Error).message}\n`);
    return 1;
  }
  const dataDir = dataDirOf(values["data-dir"]);
  const store = CloudStore.open(dataDir);
  try {
    const version = store.setConfig(nodeId, config);
    out(`configuration version ${version} published for node ${nodeId} (cloud data in ${dataDir})\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigInvalidError)) throw error;
    // The connector's words, so what the operator reads here is what its log would have said.
    err(`error: ${file} was not published (cloud data in ${dataDir}); the connector would refuse it as invalid: `);
    err(`${issueSentence(error.issues)}.\n`);
    return 1;
  } finally {
    store.close();
  }
}

function punches(args: string[], out: (text: string) => void, err: (text: string) => void): number {
  const { values, positionals } = parseArgs({
    args,
    options: { ...COMMON, json: { type: "boolean" }, limit: { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(HELP.punches ?? "");
    return 0;
  }
  const [nodeId] = positionals;
  if (nodeId === undefined || positionals.length > 1) throw new UsageError("punches needs one NODE id");
  const limit = Number(values.limit ?? "100");
  if (!Number.isInteger(limit) || limit < 0) throw new UsageError(`--limit ${values.limit} is not a whole number`);
  const store = CloudStore.open(dataDirOf(values["data-dir"]));
  try {
    if (store.nodeSecret(nodeId) === undefined) {
      throw new Error(`node ${nodeId} is not registered here; check the id and --data-dir`);
    }
    const stats = store.stats(nodeId);
    const rejected = store.rejectedCount(nodeId);
    if (values.json) {
      const listed = store.punches(nodeId, limit === 0 ? -1 : limit);
      const truncated = limit > 0 && stats.total > listed.length;
      out(`${JSON.stringify({ ...stats, rejected, punches: listed, truncated }, null, 2)}\n`);
      if (truncated) err(`listed ${listed.length} of ${stats.total} punches; --limit N or --limit 0 lists more\n`);
      return 0;
    }
    out(`node ${nodeId}\n`);
    const devices = Object.entries(stats.byDevice);
    if (devices.length === 0) out("  (no punches yet)\n");
    const width = Math.max(0, ...devices.map(([serial]) => serial.length));
    for (const [serial, count] of devices) out(`  ${serial.padEnd(width)}  ${count}\n`);
    out(`total ${stats.total} punches, ${stats.duplicateDeliveries} duplicate deliveries, ${rejected} rejected\n`);
    return 0;
  } finally {
    store.close();
  }
}

if (import.meta.main) {
  // A promise chain rather than top-level await, so the single-executable bundle (CommonJS) can include this file.
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
