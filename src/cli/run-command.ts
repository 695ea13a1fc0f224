import { parseArgs } from "node:util";
import { Connector } from "../app/connector.ts";
import { defaultDataDir, ensureDataDir, openSecretStore } from "../app/data-dir.ts";
import { createLogger, LOG_LEVELS, type LogLevel, Redactor } from "../core/logger.ts";
import { LOG_FILE_DEFAULTS } from "../core/rotating-file.ts";
import type { CliIo } from "./cli-io.ts";

export const RUN_USAGE = `Usage: bioapi run [--data-dir DIR] [--status-port N] [--log-level debug|info|warn|error]
                 [--log-format json|pretty] [--log-dir DIR]

Runs the connector in the foreground until SIGINT or SIGTERM.

  --log-format   console lines: pretty (the default at a terminal) or json (the default otherwise)
  --log-dir DIR  also write JSON lines to DIR/bioapi.log, rotated at ${LOG_FILE_DEFAULTS.maxBytes / 1048576} MiB, keeping ${LOG_FILE_DEFAULTS.maxFiles} old files
                 (bioapi.1.log newest … bioapi.${LOG_FILE_DEFAULTS.maxFiles}.log oldest)`;

export async function runCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string" },
      "status-port": { type: "string", default: "0" },
      "log-level": { type: "string", default: "info" },
      "log-format": { type: "string" },
      "log-dir": { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    io.out(RUN_USAGE);
    return 0;
  }
  const level = (LOG_LEVELS as readonly string[]).includes(values["log-level"])
    ? (values["log-level"] as LogLevel)
    : "info";
  const redactor = new Redactor();
  const logger = createLogger({
    level,
    format:
      values["log-format"] === "json"
        ? "json"
        : values["log-format"] === "pretty"
          ? "pretty"
          : process.stderr.isTTY
            ? "pretty"
            : "json",
    redact: redactor,
    write: io.err,
    ...(values["log-dir"] ? { dir: values["log-dir"] } : {}),
  });
  const layout = ensureDataDir(values["data-dir"] ?? defaultDataDir());
  const connector = await Connector.start({
    dataDir: layout.root,
    secrets: openSecretStore(layout),
    logger,
    redactor,
    statusPort: Number(values["status-port"]),
  });
  const fatal = (error: unknown) => {
    logger.error("Unhandled failure; exiting so the service manager restarts the connector.", { error });
    process.exit(70);
  };
  process.on("unhandledRejection", fatal);
  process.on("uncaughtException", fatal);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn("Second signal: exiting now.", { signal });
        process.exit(1);
      }
      stopping = true;
      logger.info("Stopping.", { signal });
      connector.stop(10_000).then(resolve, (error: unknown) => {
        logger.error("Stop failed.", { error });
        resolve();
      });
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  return 0;
}
