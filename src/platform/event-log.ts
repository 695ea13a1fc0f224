import type { Exec } from "./exec.ts";

/**
 * Start, stop and fatal errors for the Windows Event Log (Application), where Windows administrators and their
 * monitoring tools look first. Elsewhere a no-op: under systemd the same lines already reach the journal.
 */
export interface EventLog {
  write(level: EventLevel, message: string, id?: number): Promise<void>;
}

export type EventLevel = "info" | "warning" | "error";

export const EVENT_SOURCE = "CamsBioApi";
export const EVENT_IDS = { started: 100, stopped: 101, fatal: 102, monitorRestart: 110, monitorGaveUp: 111 } as const;

export const noEventLog: EventLog = { write: async () => undefined };

/** eventcreate.exe arguments. IDs must be 1-1000; the description is capped because the tool refuses long ones. */
export function eventCreateArgs(level: EventLevel, message: string, id: number, source = EVENT_SOURCE): string[] {
  const type = level === "error" ? "ERROR" : level === "warning" ? "WARNING" : "INFORMATION";
  return ["/L", "APPLICATION", "/T", type, "/SO", source, "/ID", String(id), "/D", message.slice(0, 1000)];
}

/**
 * Through eventcreate.exe (built into Windows, no native code). Messages come from the already-redacted log lines'
 * texts; a failure to write the event never disturbs the service.
 */
export class WindowsEventLog implements EventLog {
  readonly #exec: Exec;

  constructor(exec: Exec) {
    this.#exec = exec;
  }

  async write(level: EventLevel, message: string, id?: number): Promise<void> {
    const eventId =
      id ?? (level === "error" ? EVENT_IDS.fatal : level === "warning" ? EVENT_IDS.monitorRestart : EVENT_IDS.started);
    await this.#exec("eventcreate.exe", eventCreateArgs(level, message, eventId), { timeoutMs: 10_000 }).catch(
      () => undefined,
    );
  }
}

export async function platformEventLog(): Promise<EventLog> {
  if (process.platform !== "win32") return noEventLog;
  const { execTool } = await import("./exec.ts");
  return new WindowsEventLog(execTool);
}
