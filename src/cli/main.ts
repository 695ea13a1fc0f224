import { BioError, describeError, EXIT_STORE_FULL } from "../core/errors.ts";
import { VERSION } from "../core/version.ts";
import { detectSelf } from "../platform/self.ts";
import { type CliIo, processIo } from "./cli-io.ts";
import { renderIndex } from "./command-spec.ts";
import { COMMAND_SPECS } from "./commands.ts";
import { doctorCommand } from "./doctor-command.ts";
import { enrollCommand } from "./enroll-command.ts";
import { monitorCommand } from "./monitor-command.ts";
import { runCommand } from "./run-command.ts";
import { serviceCommand } from "./service-command.ts";
import { statusCommand } from "./status-command.ts";

export const USAGE = renderIndex(`bioapi ${VERSION} — Cams Bio API Service`, COMMAND_SPECS, [
  ["cloud", "the reference cloud: serve, node add, config set, punches (bioapi cloud --help)"],
  ["sim zk", "simulated ZK terminals (TCP/UDP port 4370) for trials and tests"],
  ["--version", "print the version"],
]);

const COMMANDS: Record<string, (argv: string[], io: CliIo) => Promise<number>> = {
  doctor: doctorCommand,
  enroll: enrollCommand,
  monitor: monitorCommand,
  run: runCommand,
  service: (argv, io) => serviceCommand(argv, io),
  status: statusCommand,
};

/** Runs one product command and returns its exit code; errors are printed with their fix, never a stack. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    io.out(USAGE);
    return command ? 0 : 2;
  }
  if (command === "--version" || command === "-v") {
    io.out(VERSION);
    return 0;
  }
  await detectSelf();
  const handler = COMMANDS[command];
  if (!handler) {
    io.err(`Unknown command "${command}".\n\n${USAGE}`);
    return 2;
  }
  try {
    return await handler(rest, io);
  } catch (error) {
    const d = describeError(error);
    io.err(`bioapi ${command}: ${d.message}`);
    if (error instanceof BioError && error.code === "STORE_FULL") return EXIT_STORE_FULL;
    const usage = error instanceof BioError ? error.code === "USAGE" : isParseArgsError(error);
    return usage ? 2 : 1;
  }
}

/** node:util parseArgs refusing an option or a value: a usage error like any other. */
function isParseArgsError(error: unknown): boolean {
  return String((error as { code?: unknown })?.code ?? "").startsWith("ERR_PARSE_ARGS");
}
