import { LOG_FILE_DEFAULTS } from "../core/rotating-file.ts";
import { DEFAULT_PENDING_DEADLINE_MS } from "../monitor/monitor.ts";
import { DEFAULT_RESTART_POLICY } from "../monitor/restart-policy.ts";
import { CREDENTIAL_NAME } from "../secrets/systemd-creds-protector.ts";
import type { CommandSpec, OptionSpec } from "./command-spec.ts";

/** Every product command's description; help and option parsing both come from here (see command-spec.ts). */

const DATA_DIR = {
  name: "data-dir",
  value: "DIR",
  text: "the connector's data directory",
  defaultText: "$BIOAPI_DATA_DIR, else ./.data/connector",
} as const satisfies OptionSpec;

const SERVICE_DATA_DIR = {
  name: "data-dir",
  value: "DIR",
  text: "the services' data directory",
  defaultText: "/var/lib/cams-bioapi on Linux, %ProgramData%\\CamsBioApi on Windows",
} as const satisfies OptionSpec;

const LOG_FORMAT = {
  name: "log-format",
  value: "json|pretty",
  text: "console lines: pretty, or JSON objects",
  defaultText: "pretty at a terminal, json otherwise",
} as const satisfies OptionSpec;

const MANAGERS = "systemd, windows or process";

const SERVICE_OPTIONS = [
  {
    name: "manager",
    value: "NAME",
    text: `${MANAGERS}: who runs the services (process: the monitor starts the connector itself)`,
    defaultText: "windows on Windows, systemd elsewhere",
  },
  SERVICE_DATA_DIR,
  { name: "dry-run", text: "print the commands and unit files instead of running them" },
] as const satisfies readonly OptionSpec[];

const UNIT_DIR = {
  name: "unit-dir",
  value: "DIR",
  text: "where the systemd units are written",
  default: "/etc/systemd/system",
} as const satisfies OptionSpec;

export const RUN = {
  name: "run",
  summary: "run the connector in the foreground",
  description:
    "Runs the connector in the foreground until SIGINT or SIGTERM. The data directory must hold an enrollment " +
    "(bioapi enroll); run never creates it.",
  options: [
    DATA_DIR,
    {
      name: "status-port",
      value: "N",
      text: "loopback port of the status page and API; 0 picks a free one",
      default: "0",
    },
    { name: "log-level", value: "debug|info|warn|error", text: "the lowest level logged", default: "info" },
    LOG_FORMAT,
    {
      name: "log-dir",
      value: "DIR",
      text: `also write JSON lines to DIR/connector.log, renamed at ${LOG_FILE_DEFAULTS.maxBytes / 1048576} MiB to connector.1.log (newest) … connector.${LOG_FILE_DEFAULTS.maxFiles}.log (oldest)`,
    },
    {
      name: "service",
      text: "started by the Windows Service Control Manager (the service installer passes it); under systemd, readiness and watchdog pings follow $NOTIFY_SOCKET",
    },
    {
      name: "start-deadline-ms",
      value: "MS",
      text: "with --service on Windows: a start not finished by then reports STOPPED (exit code 80) so the SCM and the monitor take over",
      default: "120000",
    },
  ],
} as const satisfies CommandSpec;

export const ENROLL = {
  name: "enroll",
  summary: "store this node's cloud credentials (encrypted)",
  forms: ["--cloud-url URL --node-id UUID [--secret-file FILE | --secret-stdin] [options]"],
  description:
    "Stores the node's credentials encrypted in the data directory, after one signed request that checks them. " +
    "The node secret is read from a file or from standard input, never from the command line, where other users " +
    "could see it in the process list.",
  options: [
    { name: "cloud-url", value: "URL", text: "the cloud's address (https; http only for loopback)" },
    { name: "node-id", value: "UUID", text: "the node id that bioapi cloud node add printed" },
    { name: "secret-file", value: "FILE", text: "read the node secret from FILE (delete it afterwards)" },
    { name: "secret-stdin", text: "read the node secret from standard input (also the default when it is piped)" },
    DATA_DIR,
    { name: "no-verify", text: "store without checking the credentials with the cloud (offline enrollment)" },
    {
      name: "force",
      text: "replace another node's enrollment; also start a fresh secrets file when the old one cannot be opened (it is kept aside as secrets.json.old-*)",
    },
  ],
  notes: [
    "Refuses while a connector runs on the data directory, and refuses to replace another node's enrollment " +
      "unless --force is given.",
  ],
} as const satisfies CommandSpec;

export const STATUS = {
  name: "status",
  summary: "the running connector's state and its monitor's record, or the page's address",
  forms: ["[--json | --url] [options]"],
  description: "Reads the running connector's loopback status endpoint.",
  options: [
    DATA_DIR,
    { name: "json", text: "the whole status as JSON (the same document as GET /v1/status)" },
    { name: "url", text: "the status page's address with its token, for a browser on this machine" },
  ],
  notes: [
    "Exit codes, the same with and without --json and --url: 0 the connector answered; 1 it is not running or " +
      "does not answer (no status.json, a dead process, a refused token); 2 a usage error.",
  ],
} as const satisfies CommandSpec;

export const DOCTOR = {
  name: "doctor",
  summary: "check everything end to end: cloud, clock, signature, terminals, databases",
  forms: ["[options]", "--source-config FILE [--source ID] [options]", "--source ID [options]"],
  description:
    "Without --source or --source-config: checks everything end to end and prints a fix for each problem. The " +
    "enrollment and cached config decrypt; the cloud is reachable, its clock agrees with this machine's, it " +
    "accepts the node's signature and its config decrypts; each terminal is reachable, accepts the comm key, and " +
    "shows its record count and clock drift; each database connects and has its table and the index a poll needs." +
    "\n\n" +
    "With --source-config or --source: checks one database source in depth, without sending anything: connects, " +
    "finds the table and columns, shows how times are read, the row count, the newest rows as the punches they " +
    "would become, the index each poll needs, and the cursor the source would start from (from the data " +
    "directory's store when there is one). Terminal sources are checked by plain bioapi doctor.",
  options: [
    DATA_DIR,
    { name: "json", text: "the findings as JSON" },
    {
      name: "source-config",
      value: "FILE",
      text: "a JSON file holding one database source, or a whole connector config (pick one with --source)",
    },
    { name: "source", value: "ID", text: "that source of the config; without --source-config, of the cached one" },
    { name: "rows", value: "N", text: "newest rows to show", default: "5" },
  ],
  notes: [
    "Exit codes: 0 nothing failed (warnings allowed) or the source can be read; 1 a check failed; 2 a usage error.",
  ],
} as const satisfies CommandSpec;

export const SERVICE = {
  name: "service",
  summary: "install, uninstall, start, stop or show the Windows or systemd services",
  forms: ["install|uninstall|start|stop|status [options]"],
  description:
    "Manages the two services: the connector and its monitor. Run elevated (root / Administrator). " +
    "bioapi service <action> --help describes one action.",
  options: [...SERVICE_OPTIONS, UNIT_DIR],
} as const satisfies CommandSpec;

export const SERVICE_ACTIONS: Readonly<Record<string, CommandSpec>> = {
  install: {
    name: "service install",
    summary: "install both services",
    description:
      "Windows: both services (delayed auto-start, LocalSystem, recovery actions), ProgramData and registry ACLs. " +
      `Linux: hardened systemd units and the ${CREDENTIAL_NAME} credential (systemd-creds) when available; ` +
      "systemd must be running (else use --manager process), and the executable must lie outside /tmp and " +
      "/home, which the units hide. A failed install removes what it wrote.",
    options: [...SERVICE_OPTIONS, UNIT_DIR],
    notes: ["Next: enroll with the service's --data-dir, then bioapi service start."],
  },
  uninstall: {
    name: "service uninstall",
    summary: "remove both services",
    description: "Stops and removes both services. Data, secrets and logs are kept (see docs/operations.md).",
    options: [...SERVICE_OPTIONS, UNIT_DIR],
  },
  start: {
    name: "service start",
    summary: "start both services",
    description: 'Records the intent "running" and starts both services.',
    options: SERVICE_OPTIONS,
  },
  stop: {
    name: "service stop",
    summary: "stop the connector",
    description: 'Records the intent "stopped" and stops the connector; the monitor stays up and leaves it stopped.',
    options: SERVICE_OPTIONS,
  },
  status: {
    name: "service status",
    summary: "the service manager's view and the monitor's record",
    description: "Prints the service manager's view of both services, then the monitor's record.",
    options: SERVICE_OPTIONS,
  },
};

const ms = (n: number) => String(n);

export const MONITOR = {
  name: "monitor",
  summary: "the companion watchdog (run by the monitor service)",
  forms: ["[options] [-- RUN-OPTIONS...]"],
  description:
    "The companion watchdog. Checks the connector over its health channel (a unix socket / named pipe in the data " +
    "directory), restarts it when it crashed, hangs or stalls (with backoff), gives up after --max-restarts within " +
    "--window-ms, and never restarts a connector an administrator stopped. What it did is shown by bioapi status. " +
    "Options after -- go to the connector's bioapi run.",
  options: [
    DATA_DIR,
    {
      name: "manager",
      value: "NAME",
      text: `${MANAGERS}: process starts the connector itself as a child (containers, development); systemd and windows ask the service manager`,
      defaultText: "the platform's service manager",
    },
    { name: "unit", value: "NAME", text: "the connector's unit or service name" },
    { name: "service", text: "started by the Windows Service Control Manager" },
    LOG_FORMAT,
    { name: "log-dir", value: "DIR", text: "also append the monitor's log to DIR/monitor.log" },
    { name: "interval-ms", value: "N", text: "how often the connector is checked", default: "10000" },
    { name: "probe-timeout-ms", value: "N", text: "how long a check may take", default: "5000" },
    { name: "strikes", value: "N", text: "failed checks in a row before a restart", default: "3" },
    { name: "start-grace-ms", value: "N", text: "how long a starting connector may stay silent", default: "60000" },
    {
      name: "pending-deadline-ms",
      value: "N",
      text: "how long a start or stop may last before checks fail",
      default: ms(DEFAULT_PENDING_DEADLINE_MS),
    },
    {
      name: "restart-delay-ms",
      value: "N",
      text: "first delay before a restart",
      default: ms(DEFAULT_RESTART_POLICY.initialDelayMs),
    },
    {
      name: "restart-max-delay-ms",
      value: "N",
      text: "longest delay before a restart",
      default: ms(DEFAULT_RESTART_POLICY.maxDelayMs),
    },
    {
      name: "max-restarts",
      value: "N",
      text: "restarts within --window-ms before giving up",
      default: ms(DEFAULT_RESTART_POLICY.maxRestarts),
    },
    {
      name: "window-ms",
      value: "N",
      text: "the window --max-restarts counts in",
      default: ms(DEFAULT_RESTART_POLICY.windowMs),
    },
  ],
} as const satisfies CommandSpec;

export const DEMO = {
  name: "demo",
  summary: "run everything on this machine: cloud, sample database, terminals, connector",
  description:
    "Runs everything on this machine: the reference cloud, a sample SQLite attendance database that keeps " +
    "receiving punches from four devices, two simulated ZK terminals on the loopback (one TCP, one UDP) punching " +
    "live, a receiver of the Cams Web API punch callback, and the connector, enrolled and configured through the " +
    "cloud to deliver to both the cloud and that callback. It prints the status page's address. Ctrl-C stops it " +
    "all and prints what the cloud holds per device and what the callback receiver took.",
  options: [
    { name: "duration", value: "SECONDS", text: "stop by itself after this long", defaultText: "run until Ctrl-C" },
    { name: "rate", value: "N", text: "punches per second written to the sample database", default: "4" },
    {
      name: "keep",
      text: "keep the demo's temporary directory (cloud, database, connector data and logs) after it stops, and print where it is",
    },
  ],
} as const satisfies CommandSpec;

/** In the order `bioapi --help` lists them. */
export const COMMAND_SPECS: readonly CommandSpec[] = [DEMO, ENROLL, RUN, STATUS, DOCTOR, SERVICE, MONITOR];
