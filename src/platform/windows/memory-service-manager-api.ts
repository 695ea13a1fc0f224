import {
  type Recovery,
  type ServiceDefinition,
  type ServiceManagerApi,
  type ServiceQuery,
  type ServiceState,
  serviceError,
  WIN32,
} from "./service-manager-api.ts";

interface Entry {
  definition: ServiceDefinition;
  recovery: Recovery | undefined;
  failureFlag: boolean;
  state: ServiceState;
  pid: number | null;
  win32ExitCode: number;
  serviceExitCode: number;
  markedForDelete: boolean;
}

type Call = keyof Omit<ServiceManagerApi, "name">;

/**
 * The SCM in memory, with the rules the callers rely on: names are case-insensitive, an unknown service is
 * ERROR_SERVICE_DOES_NOT_EXIST, starting a running one ERROR_SERVICE_ALREADY_RUNNING, stopping a stopped one
 * ERROR_SERVICE_NOT_ACTIVE, creating a second ERROR_SERVICE_EXISTS, and `failNext` injects any other Win32 error.
 * A test plays the service's own part with {@link exit} and {@link settle}.
 */
export class MemoryServiceManagerApi implements ServiceManagerApi {
  readonly name = "memory";
  readonly #services = new Map<string, Entry>();
  readonly #faults: Array<{ call: Call; code: number }> = [];
  #nextPid = 4000;
  /** Every call with its service name, for tests that check what was (not) done. */
  readonly calls: Array<{ call: Call; service: string }> = [];
  /** Whether a start goes straight to RUNNING (default) or stays START_PENDING until {@link settle}. */
  startsPending = false;

  failNext(call: Call, code: number): void {
    this.#faults.push({ call, code });
  }

  #enter(call: Call, service: string): void {
    this.calls.push({ call, service });
    const i = this.#faults.findIndex((f) => f.call === call);
    const fault = i >= 0 ? this.#faults.splice(i, 1)[0] : undefined;
    if (fault) throw serviceError(call, service, fault.code);
  }

  #get(call: Call, service: string): Entry {
    const entry = this.#services.get(service.toUpperCase());
    if (!entry) throw serviceError(call, service, WIN32.SERVICE_DOES_NOT_EXIST);
    return entry;
  }

  async query(service: string): Promise<ServiceQuery> {
    this.#enter("query", service);
    const e = this.#get("query", service);
    return { state: e.state, pid: e.pid, win32ExitCode: e.win32ExitCode, serviceExitCode: e.serviceExitCode };
  }

  async start(service: string): Promise<"started" | "already-running"> {
    this.#enter("start", service);
    const e = this.#get("start", service);
    if (e.markedForDelete) throw serviceError("start", service, WIN32.SERVICE_MARKED_FOR_DELETE);
    if (e.state !== "stopped") return "already-running";
    e.state = this.startsPending ? "start-pending" : "running";
    e.pid = this.#nextPid++;
    e.win32ExitCode = 0;
    e.serviceExitCode = 0;
    return "started";
  }

  async stop(service: string): Promise<"stopping" | "not-active"> {
    this.#enter("stop", service);
    const e = this.#get("stop", service);
    if (e.state === "stopped") return "not-active";
    // A service that is still starting accepts no controls, as on Windows.
    if (e.state === "start-pending") throw serviceError("stop", service, WIN32.SERVICE_CANNOT_ACCEPT_CTRL);
    e.state = "stopped";
    e.pid = null;
    return "stopping";
  }

  async create(definition: ServiceDefinition): Promise<void> {
    this.#enter("create", definition.name);
    const key = definition.name.toUpperCase();
    const existing = this.#services.get(key);
    if (existing) {
      throw serviceError(
        "create",
        definition.name,
        existing.markedForDelete ? WIN32.SERVICE_MARKED_FOR_DELETE : WIN32.SERVICE_EXISTS,
      );
    }
    this.#services.set(key, {
      definition,
      recovery: undefined,
      failureFlag: false,
      state: "stopped",
      pid: null,
      win32ExitCode: 0,
      serviceExitCode: 0,
      markedForDelete: false,
    });
  }

  /** Plays an SCM without the failure flag setting (Wine's). */
  failureFlagSupported = true;

  async setRecovery(service: string, recovery: Recovery): Promise<{ failureFlag: "set" | "unsupported" }> {
    this.#enter("setRecovery", service);
    const e = this.#get("setRecovery", service);
    e.recovery = recovery;
    e.failureFlag = this.failureFlagSupported;
    return { failureFlag: this.failureFlagSupported ? "set" : "unsupported" };
  }

  async delete(service: string): Promise<"deleted" | "absent"> {
    this.#enter("delete", service);
    const key = service.toUpperCase();
    const e = this.#services.get(key);
    if (!e) return "absent";
    // The SCM removes a service only once it has stopped; until then it is marked for delete.
    if (e.state === "stopped") this.#services.delete(key);
    else e.markedForDelete = true;
    return "deleted";
  }

  /** The service process ended: with code 0 an orderly stop, otherwise a failure (1066 + its own code). */
  exit(service: string, code: number): void {
    const e = this.#get("query", service);
    e.state = "stopped";
    e.pid = null;
    e.win32ExitCode = code === 0 ? 0 : 1066;
    e.serviceExitCode = code;
    if (e.markedForDelete) this.#services.delete(service.toUpperCase());
  }

  /** The process was killed from outside: the SCM records ERROR_PROCESS_ABORTED. */
  kill(service: string): void {
    const e = this.#get("query", service);
    e.state = "stopped";
    e.pid = null;
    e.win32ExitCode = WIN32.PROCESS_ABORTED;
    e.serviceExitCode = 0;
  }

  /** A pending start finishes. */
  settle(service: string): void {
    const e = this.#get("query", service);
    if (e.state === "start-pending") e.state = "running";
  }

  /** What was configured, as the SCM would report it (QueryServiceConfig / QueryServiceConfig2). */
  configOf(service: string): { definition: ServiceDefinition; recovery?: Recovery; failureFlag: boolean } | undefined {
    const e = this.#services.get(service.toUpperCase());
    if (!e) return undefined;
    return { definition: e.definition, ...(e.recovery ? { recovery: e.recovery } : {}), failureFlag: e.failureFlag };
  }
}
