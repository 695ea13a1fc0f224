import { loadKoffi } from "../native.ts";
import {
  type Recovery,
  SERVICE_STATES,
  type ServiceDefinition,
  type ServiceManagerApi,
  type ServiceQuery,
  serviceError,
  WIN32,
  win32CodeOf,
} from "./service-manager-api.ts";

/*
 * advapi32's service functions through koffi. A failure is read with GetLastError right after the call (koffi keeps
 * Node and V8 from overwriting it). StartService and ControlService run on a worker thread: StartService waits until
 * the new process connects its dispatcher (up to 30 s), and the monitor's event loop must not stall meanwhile. The
 * others are short RPCs to services.exe.
 */

const SC_MANAGER_CONNECT = 0x0001;
const SC_MANAGER_CREATE_SERVICE = 0x0002;
const SERVICE_QUERY_STATUS = 0x0004;
const SERVICE_CHANGE_CONFIG = 0x0002;
const SERVICE_START = 0x0010;
const SERVICE_STOP = 0x0020;
const DELETE = 0x0001_0000;
const SERVICE_ALL_ACCESS = 0x000f_01ff;
const SERVICE_WIN32_OWN_PROCESS = 0x10;
const SERVICE_AUTO_START = 2;
const SERVICE_ERROR_NORMAL = 1;
const SC_STATUS_PROCESS_INFO = 0;
const SERVICE_CONTROL_STOP = 1;
const SERVICE_CONFIG_DESCRIPTION = 1;
const SERVICE_CONFIG_FAILURE_ACTIONS = 2;
const SERVICE_CONFIG_DELAYED_AUTO_START_INFO = 3;
const SERVICE_CONFIG_FAILURE_ACTIONS_FLAG = 4;
const SC_ACTION_RESTART = 1;
const SERVICE_STATUS_BYTES = 7 * 4;

type Native = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

interface Bound {
  koffi: Awaited<ReturnType<typeof loadKoffi>>;
  actionType: unknown;
  statusProcessSize: number;
  openManager: Native;
  openService: Native;
  close: Native;
  queryStatusEx: Native;
  startService: Native;
  controlService: Native;
  createService: Native;
  deleteService: Native;
  setDescription: Native;
  setFailureActions: Native;
  setFlag: Native;
  lastError: Native;
}

let bound: Promise<Bound> | undefined;

/** Bound once per process: koffi type names are global (see crypt32() in koffi-dpapi.ts). */
function advapi32(): Promise<Bound> {
  bound ??= bind();
  return bound;
}

async function bind(): Promise<Bound> {
  const koffi = await loadKoffi();
  const STATUS_PROCESS = koffi.struct("CAMS_SERVICE_STATUS_PROCESS", {
    dwServiceType: "uint32",
    dwCurrentState: "uint32",
    dwControlsAccepted: "uint32",
    dwWin32ExitCode: "uint32",
    dwServiceSpecificExitCode: "uint32",
    dwCheckPoint: "uint32",
    dwWaitHint: "uint32",
    dwProcessId: "uint32",
    dwServiceFlags: "uint32",
  });
  const SC_ACTION = koffi.struct("CAMS_SC_ACTION", { Type: "int32", Delay: "uint32" });
  const FAILURE_ACTIONS = koffi.struct("CAMS_SERVICE_FAILURE_ACTIONSW", {
    dwResetPeriod: "uint32",
    lpRebootMsg: "str16",
    lpCommand: "str16",
    cActions: "uint32",
    lpsaActions: "void *",
  });
  const DESCRIPTION = koffi.struct("CAMS_SERVICE_DESCRIPTIONW", { lpDescription: "str16" });
  // SERVICE_FAILURE_ACTIONS_FLAG and SERVICE_DELAYED_AUTO_START_INFO are both one BOOL.
  const ONE_BOOL = koffi.struct("CAMS_SERVICE_BOOL_INFO", { value: "int32" });
  const advapi = koffi.load("advapi32.dll");
  const kernel32 = koffi.load("kernel32.dll");
  const fn = (name: string, result: string, params: unknown[]) =>
    advapi.func("__stdcall", name, result, params as string[]) as unknown as Native;
  const change2 = (type: unknown) =>
    fn("ChangeServiceConfig2W", "bool", ["void *", "uint32", koffi.pointer(type as never)]);
  return {
    koffi,
    actionType: SC_ACTION,
    statusProcessSize: koffi.sizeof(STATUS_PROCESS),
    openManager: fn("OpenSCManagerW", "void *", ["str16", "str16", "uint32"]),
    openService: fn("OpenServiceW", "void *", ["void *", "str16", "uint32"]),
    close: fn("CloseServiceHandle", "bool", ["void *"]),
    queryStatusEx: fn("QueryServiceStatusEx", "bool", [
      "void *",
      "int32",
      koffi.out(koffi.pointer(STATUS_PROCESS)),
      "uint32",
      koffi.out(koffi.pointer("uint32")),
    ]),
    startService: fn("StartServiceW", "bool", ["void *", "uint32", "void *"]),
    // The SERVICE_STATUS it fills is not read: a buffer of its size (seven DWORDs) is enough.
    controlService: fn("ControlService", "bool", ["void *", "uint32", "void *"]),
    createService: fn("CreateServiceW", "void *", [
      "void *",
      "str16",
      "str16",
      "uint32",
      "uint32",
      "uint32",
      "uint32",
      "str16",
      "str16",
      "void *",
      "str16",
      "str16",
      "str16",
    ]),
    deleteService: fn("DeleteService", "bool", ["void *"]),
    setDescription: change2(DESCRIPTION),
    setFailureActions: change2(FAILURE_ACTIONS),
    setFlag: change2(ONE_BOOL),
    lastError: kernel32.func("__stdcall", "GetLastError", "uint32", []) as unknown as Native,
  };
}

/**
 * Runs a BOOL call on a worker thread; resolves with 0 on success or the Win32 error. The error is read inside the
 * completion callback, the only moment koffi guarantees it is the call's: by the time a promise continuation runs,
 * other calls may have replaced it (seen under Wine as "failed with Windows error 0").
 */
function runAsync(f: Native, lastError: Native, args: unknown[]): Promise<number> {
  return new Promise((resolve, reject) =>
    f.async(...args, (e: unknown, ok: unknown) => {
      // koffi holds no reference to a buffer passed as a pointer, and the worker wrote into it until now: the
      // arguments are released here, not when the call was queued.
      args.splice(0);
      if (e) reject(e);
      else resolve(ok ? 0 : (lastError() as number) || -1);
    }),
  );
}

export class KoffiServiceManagerApi implements ServiceManagerApi {
  readonly name = "advapi32";

  /** Opens the SCM and the service, runs `body`, and closes both whatever happens. */
  async #with<T>(
    call: string,
    service: string,
    access: { manager: number; service: number | null },
    body: (api: Bound, handle: unknown, manager: unknown) => Promise<T>,
  ): Promise<T> {
    const api = await advapi32();
    const manager = api.openManager(null, null, access.manager);
    if (!manager) throw serviceError(`${call} (OpenSCManager)`, service, api.lastError() as number);
    try {
      if (access.service === null) return await body(api, null, manager);
      const handle = api.openService(manager, service, access.service);
      if (!handle) throw serviceError(`${call} (OpenService)`, service, api.lastError() as number);
      try {
        return await body(api, handle, manager);
      } finally {
        api.close(handle);
      }
    } finally {
      api.close(manager);
    }
  }

  query(service: string): Promise<ServiceQuery> {
    return this.#with(
      "QueryServiceStatusEx",
      service,
      { manager: SC_MANAGER_CONNECT, service: SERVICE_QUERY_STATUS },
      async (api, h) => {
        const out: Record<string, number> = {};
        const needed = [0];
        if (!api.queryStatusEx(h, SC_STATUS_PROCESS_INFO, out, api.statusProcessSize, needed)) {
          throw serviceError("QueryServiceStatusEx", service, api.lastError() as number);
        }
        const pid = out.dwProcessId ?? 0;
        return {
          state: SERVICE_STATES[out.dwCurrentState ?? 0] ?? "unknown",
          pid: pid > 0 ? pid : null,
          win32ExitCode: out.dwWin32ExitCode ?? 0,
          serviceExitCode: out.dwServiceSpecificExitCode ?? 0,
        };
      },
    );
  }

  start(service: string): Promise<"started" | "already-running"> {
    return this.#with(
      "StartService",
      service,
      { manager: SC_MANAGER_CONNECT, service: SERVICE_START },
      async (api, h) => {
        const code = await runAsync(api.startService, api.lastError, [h, 0, null]);
        if (code === 0) return "started";
        if (code === WIN32.SERVICE_ALREADY_RUNNING) return "already-running";
        throw serviceError("StartService", service, code);
      },
    );
  }

  stop(service: string): Promise<"stopping" | "not-active"> {
    return this.#with(
      "ControlService(STOP)",
      service,
      { manager: SC_MANAGER_CONNECT, service: SERVICE_STOP },
      async (api, h) => {
        const code = await runAsync(api.controlService, api.lastError, [
          h,
          SERVICE_CONTROL_STOP,
          Buffer.alloc(SERVICE_STATUS_BYTES),
        ]);
        if (code === 0) return "stopping";
        if (code === WIN32.SERVICE_NOT_ACTIVE) return "not-active";
        throw serviceError("ControlService(STOP)", service, code);
      },
    );
  }

  create(d: ServiceDefinition): Promise<void> {
    return this.#with(
      "CreateService",
      d.name,
      { manager: SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE, service: null },
      async (api, _h, manager) => {
        const handle = api.createService(
          manager,
          d.name,
          d.displayName,
          SERVICE_ALL_ACCESS,
          SERVICE_WIN32_OWN_PROCESS,
          SERVICE_AUTO_START,
          SERVICE_ERROR_NORMAL,
          d.binPath,
          null,
          null,
          null,
          // NULL is LocalSystem; a virtual account is named, with no password.
          d.account === "LocalSystem" ? null : d.account,
          null,
        );
        if (!handle) throw serviceError("CreateService", d.name, api.lastError() as number);
        try {
          if (!api.setFlag(handle, SERVICE_CONFIG_DELAYED_AUTO_START_INFO, { value: 1 })) {
            throw serviceError("ChangeServiceConfig2(DELAYED_AUTO_START_INFO)", d.name, api.lastError() as number);
          }
          if (!api.setDescription(handle, SERVICE_CONFIG_DESCRIPTION, { lpDescription: d.description })) {
            throw serviceError("ChangeServiceConfig2(DESCRIPTION)", d.name, api.lastError() as number);
          }
        } finally {
          api.close(handle);
        }
      },
    );
  }

  setRecovery(service: string, r: Recovery): Promise<{ failureFlag: "set" | "unsupported" }> {
    return this.#with(
      "ChangeServiceConfig2",
      service,
      { manager: SC_MANAGER_CONNECT, service: SERVICE_CHANGE_CONFIG | SERVICE_START },
      async (api, h) => {
        const n = r.restartDelaysMs.length;
        // The action array is C memory the struct points at, kept until the call returns.
        const actions = api.koffi.alloc(api.actionType as never, n);
        try {
          api.koffi.encode(
            actions,
            api.koffi.array(api.actionType as never, n),
            r.restartDelaysMs.map((ms) => ({ Type: SC_ACTION_RESTART, Delay: ms })),
          );
          const info = {
            dwResetPeriod: r.resetFailuresAfterSec,
            lpRebootMsg: null,
            lpCommand: null,
            cActions: n,
            lpsaActions: actions,
          };
          if (!api.setFailureActions(h, SERVICE_CONFIG_FAILURE_ACTIONS, info)) {
            throw serviceError("ChangeServiceConfig2(FAILURE_ACTIONS)", service, api.lastError() as number);
          }
        } finally {
          api.koffi.free(actions);
        }
        if (api.setFlag(h, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, { value: 1 })) return { failureFlag: "set" as const };
        const code = api.lastError() as number;
        if (code === WIN32.INVALID_LEVEL) return { failureFlag: "unsupported" as const };
        throw serviceError("ChangeServiceConfig2(FAILURE_ACTIONS_FLAG)", service, code);
      },
    );
  }

  async delete(service: string): Promise<"deleted" | "absent"> {
    try {
      return await this.#with(
        "DeleteService",
        service,
        { manager: SC_MANAGER_CONNECT, service: DELETE },
        async (api, h): Promise<"deleted" | "absent"> => {
          if (api.deleteService(h)) return "deleted";
          const code = api.lastError() as number;
          // Already marked: a second uninstall while the first waits for the process to end.
          if (code === WIN32.SERVICE_MARKED_FOR_DELETE) return "deleted";
          throw serviceError("DeleteService", service, code);
        },
      );
    } catch (error) {
      if (win32CodeOf(error) === WIN32.SERVICE_DOES_NOT_EXIST) return "absent";
      throw error;
    }
  }
}
