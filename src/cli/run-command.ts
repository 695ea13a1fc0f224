import { existsSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { Connector } from "../app/connector.ts";
import { defaultDataDir, ensureDataDir } from "../app/data-dir.ts";
import { startReported } from "../app/start-reported.ts";
import { BioError, describeError } from "../core/errors.ts";
import { createLogger, LOG_LEVELS, type LogLevel, Redactor } from "../core/logger.ts";
import { EVENT_IDS, platformEventLog } from "../platform/event-log.ts";
import { assertDataDirOwned, type FileSecurityApi } from "../platform/windows/file-security-api.ts";
import { KoffiFileSecurityApi } from "../platform/windows/koffi-file-security-api.ts";
import { openSecretStore } from "../secrets/open-secret-store.ts";
import { SystemdNotifier } from "../service/linux/sd-notify.ts";
import { assessProgress } from "../status/health-channel.ts";
import { Store } from "../store/store.ts";
import { type CliIo, usageError } from "./cli-io.ts";
import { optionsOf, renderHelp } from "./command-spec.ts";
import { RUN } from "./commands.ts";

export const RUN_USAGE = renderHelp(RUN);

/** What the tests replace: the platform the service checks are made for, and the Win32 file security calls. */
export interface RunDeps {
  readonly platform?: NodeJS.Platform;
  readonly fileSecurity?: FileSecurityApi;
}

export async function runCommand(argv: string[], io: CliIo, deps: RunDeps = {}): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: optionsOf(RUN),
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
    ...(values["log-dir"] ? { dir: values["log-dir"], fileName: "connector.log" } : {}),
  });
  const eventLog = await platformEventLog();
  const dataDir = resolvePath(values["data-dir"] ?? defaultDataDir());
  // Enroll creates the data directory; a run that made one would only hide a wrong --data-dir.
  if (!existsSync(dataDir)) throw notEnrolled(dataDir, "does not exist, and run creates nothing");
  const layout = ensureDataDir(dataDir);
  const asWindowsService = values.service === true && process.platform === "win32";
  const start = async () =>
    Connector.start({
      dataDir: layout.root,
      secrets: openSecretStore(layout),
      logger,
      redactor,
      statusPort: Number(values["status-port"]),
      ...(asWindowsService ? { restrictHealthChannel: await windowsHealthGuard() } : {}),
    }).catch((error: unknown) => {
      throw error instanceof BioError && error.code === "NOT_ENROLLED"
        ? notEnrolled(dataDir, "holds no enrollment")
        : error;
    });

  if (values.service === true && (deps.platform ?? process.platform) === "win32") {
    // LocalSystem must not read config, store or logs from a folder another account owns: its owner can always
    // grant itself access again (see docs/architecture.md, Threat model). The installer makes it Administrators'.
    try {
      await assertDataDirOwned(deps.fileSecurity ?? new KoffiFileSecurityApi(), dataDir);
    } catch (error) {
      const text = `Cams Bio API connector could not start: ${redactor.scrub(describeError(error).message)}`;
      await eventLog.write("error", text, EVENT_IDS.fatal);
      throw error;
    }
  }
  if (asWindowsService) {
    const { runConnectorUnderScm } = await import("../app/connector-service.ts");
    const startDeadlineMs = Number(values["start-deadline-ms"]);
    if (!Number.isFinite(startDeadlineMs) || startDeadlineMs <= 0) {
      throw usageError("--start-deadline-ms must be a positive number of milliseconds.");
    }
    return runConnectorUnderScm({ start, logger, eventLog, redactor, startDeadlineMs });
  }

  // Listening before the start, not after: status.json is written part-way through it, and a stop asked for from
  // then on (a service manager's stop right after its start, an operator who saw the endpoint) would otherwise meet
  // the default signal action and die on the spot, leaving status.json behind and the store unclosed.
  let stopping = false;
  let stopAsked: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => {
    stopAsked = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn("Second signal: exiting now.", { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info("Stopping.", { signal });
    stopAsked();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const connector = await startReported(start, eventLog, redactor);
  const stallMs = Number(process.env.BIOAPI_STALL_MS ?? 15 * 60_000);
  const systemd = await SystemdNotifier.fromEnv(
    process.env,
    () => assessProgress(connector.status(), Date.now(), stallMs).progressing,
    (error) => logger.warn("sd_notify failed.", { error }),
  );
  await systemd?.ready(`Running; status at ${connector.statusUrl}`);
  const fatal = (error: unknown) => {
    logger.error("Unhandled failure; exiting so the service manager restarts the connector.", { error });
    const text = `Cams Bio API connector failed: ${redactor.scrub(describeError(error).message)}`;
    void eventLog.write("error", text, EVENT_IDS.fatal).finally(() => process.exit(70));
    setTimeout(() => process.exit(70), 3000).unref();
  };
  process.on("unhandledRejection", fatal);
  process.on("uncaughtException", fatal);
  await stopRequested;
  await systemd?.stopping();
  await connector.stop(10_000).catch((error: unknown) => logger.error("Stop failed.", { error }));
  await eventLog.write("info", "Cams Bio API connector stopped.", EVENT_IDS.stopped);
  const waiting = outboxDepth(layout.store);
  if (waiting > 0) {
    logger.info(`${waiting.toLocaleString("en-US")} punches wait in the outbox; they go out on the next start.`, {
      outbox: waiting,
    });
  }
  return 0;
}

function notEnrolled(dataDir: string, why: string): BioError {
  return new BioError("NOT_ENROLLED", `Not enrolled: ${dataDir} ${why}.`, {
    hint: `Enroll into it first (bioapi enroll --data-dir ${dataDir} …), or pass the --data-dir you enrolled into.`,
  });
}

/** Read after the stop, so punches the last in-flight batches delivered are not counted. */
function outboxDepth(path: string): number {
  try {
    const store = Store.open(path);
    try {
      return store.depth;
    } finally {
      store.close();
    }
  } catch {
    return 0;
  }
}

/** SYSTEM, Administrators and the connector service's own SID: the only accounts that may use the health pipe. */
async function windowsHealthGuard(): Promise<(path: string) => Promise<void>> {
  const [{ restrictPipe }, { healthPipeSddl }, { CONNECTOR_SERVICE }] = await Promise.all([
    import("../platform/windows/koffi-pipe-guard.ts"),
    import("../platform/windows/pipe-access.ts"),
    import("../service/windows/service-names.ts"),
  ]);
  return (path) => restrictPipe(path, healthPipeSddl(CONNECTOR_SERVICE));
}
