import { parseArgs } from "node:util";
import { defaultDataDir, ensureDataDir } from "../app/data-dir.ts";
import { systemClock } from "../core/clock.ts";
import { createLogger } from "../core/logger.ts";
import { Monitor } from "../monitor/monitor.ts";
import { DEFAULT_RESTART_POLICY } from "../monitor/restart-policy.ts";
import {
  ChildProcessController,
  type ServiceController,
  SystemdController,
  WindowsServiceController,
} from "../monitor/service-controller.ts";
import { platformEventLog } from "../platform/event-log.ts";
import { execTool } from "../platform/exec.ts";
import { selfCommand } from "../platform/self.ts";
import { fixedHealthPath, healthChannelPath, recordedHealthChannel } from "../status/health-channel.ts";
import { type CliIo, usageError } from "./cli-io.ts";
import { optionsOf, renderHelp } from "./command-spec.ts";
import { MONITOR } from "./commands.ts";

export const MONITOR_USAGE = renderHelp(MONITOR);

export async function monitorCommand(argv: string[], io: CliIo): Promise<number> {
  const split = argv.indexOf("--");
  const own = split >= 0 ? argv.slice(0, split) : argv;
  const runArgs = split >= 0 ? argv.slice(split + 1) : [];
  const { values } = parseArgs({
    args: own,
    options: optionsOf(MONITOR),
    strict: true,
  });
  if (values.help) {
    io.out(MONITOR_USAGE);
    return 0;
  }
  const num = (name: keyof typeof values) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < 0) throw usageError(`--${name} must be a non-negative number.`);
    return n;
  };
  const manager = values.manager ?? (process.platform === "win32" && values.service ? "windows" : "process");
  const layout = ensureDataDir(values["data-dir"] ?? defaultDataDir());
  let controller: ServiceController;
  switch (manager) {
    case "process":
      controller = new ChildProcessController([...selfCommand(), "run", "--data-dir", layout.root, ...runArgs]);
      break;
    case "systemd":
      controller = new SystemdController(values.unit ?? "cams-bioapi.service", execTool);
      break;
    case "windows":
      controller = new WindowsServiceController(
        values.unit ?? "CamsBioApi",
        new (await import("../platform/windows/koffi-service-manager-api.ts")).KoffiServiceManagerApi(),
        execTool,
      );
      break;
    default:
      throw usageError(`--manager must be process, systemd or windows, not "${manager}".`);
  }
  const logDir = values["log-dir"];
  const logger = createLogger({
    format: values["log-format"] === "pretty" || (!values["log-format"] && process.stderr.isTTY) ? "pretty" : "json",
    write: io.err,
    ...(logDir ? { dir: logDir, fileName: "monitor.log" } : {}),
  }).child("monitor");
  const monitor = await Monitor.create({
    dataDir: layout.root,
    health:
      process.platform === "win32"
        ? recordedHealthChannel(layout.root, (await import("../platform/windows/koffi-pipe-guard.ts")).pipeServerPid)
        : fixedHealthPath(healthChannelPath(layout.root)),
    controller,
    logger,
    eventLog: await platformEventLog(),
    clock: systemClock,
    policy: {
      ...DEFAULT_RESTART_POLICY,
      initialDelayMs: num("restart-delay-ms"),
      maxDelayMs: num("restart-max-delay-ms"),
      maxRestarts: num("max-restarts"),
      windowMs: num("window-ms"),
    },
    intervalMs: num("interval-ms"),
    probeTimeoutMs: num("probe-timeout-ms"),
    strikes: Math.max(1, num("strikes")),
    startGraceMs: num("start-grace-ms"),
    pendingDeadlineMs: num("pending-deadline-ms"),
  });
  const controllerAbort = new AbortController();
  if (values.service && process.platform === "win32") {
    const { runMonitorUnderScm } = await import("../monitor/monitor-service.ts");
    return runMonitorUnderScm({ monitor, controller, logger, abort: controllerAbort });
  }
  const done = monitor.run(controllerAbort.signal);
  const onSignal = () => controllerAbort.abort(new DOMException("monitor stopping", "AbortError"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  await done;
  await controller.close();
  logger.info("Monitor stopped.");
  return 0;
}
