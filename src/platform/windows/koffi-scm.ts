import { loadKoffi } from "../native.ts";
import type { ScmPort, ServiceStatusReport } from "./scm-port.ts";

/*
 * The SCM's dispatcher, through koffi (prebuilt N-API module; no compiler on the build machine). Only the koffi-*.ts
 * files of platform/windows know FFI types; everything they feed is tested on Linux through the ports. Proven under
 * Wine by scripts/test-wine.sh; see docs/operations.md for what still needs a real Windows machine.
 */

/** advapi32's service API: the dispatcher runs on a libuv worker thread; koffi brings SCM callbacks to the JS thread. */
export async function koffiScm(): Promise<ScmPort> {
  const koffi = await loadKoffi();
  const advapi = koffi.load("advapi32.dll");
  const SERVICE_STATUS = koffi.struct("CAMS_SERVICE_STATUS", {
    dwServiceType: "uint32",
    dwCurrentState: "uint32",
    dwControlsAccepted: "uint32",
    dwWin32ExitCode: "uint32",
    dwServiceSpecificExitCode: "uint32",
    dwCheckPoint: "uint32",
    dwWaitHint: "uint32",
  });
  const ServiceMain = koffi.proto("__stdcall", "CamsServiceMain", "void", ["uint32", "void *"]);
  const HandlerEx = koffi.proto("__stdcall", "CamsHandlerEx", "uint32", ["uint32", "uint32", "void *", "void *"]);
  const TABLE_ENTRY = koffi.struct("CAMS_SERVICE_TABLE_ENTRYW", {
    lpServiceName: "str16",
    lpServiceProc: koffi.pointer(ServiceMain),
  });
  const StartServiceCtrlDispatcherW = advapi.func("__stdcall", "StartServiceCtrlDispatcherW", "bool", [
    koffi.pointer(TABLE_ENTRY),
  ]);
  const RegisterServiceCtrlHandlerExW = advapi.func("__stdcall", "RegisterServiceCtrlHandlerExW", "void *", [
    "str16",
    koffi.pointer(HandlerEx),
    "void *",
  ]);
  const SetServiceStatus = advapi.func("__stdcall", "SetServiceStatus", "bool", [
    "void *",
    koffi.pointer(SERVICE_STATUS),
  ]);
  let handle: unknown = null;

  return {
    dispatch(name, handlers) {
      return new Promise((resolve, reject) => {
        const handler = koffi.register((control: number) => handlers.control(control), koffi.pointer(HandlerEx));
        const main = koffi.register(() => {
          handle = RegisterServiceCtrlHandlerExW(name, handler, null);
          handlers.main();
        }, koffi.pointer(ServiceMain));
        const table = [
          { lpServiceName: name, lpServiceProc: main },
          { lpServiceName: null, lpServiceProc: null },
        ];
        StartServiceCtrlDispatcherW.async(table, (error: unknown, ok: boolean) => {
          koffi.unregister(main);
          koffi.unregister(handler);
          if (error) reject(error);
          else if (!ok) {
            reject(
              new Error(
                "StartServiceCtrlDispatcher failed: this process was not started by the Service Control Manager (use bioapi run without --service from a console).",
              ),
            );
          } else resolve();
        });
      });
    },
    setStatus(r: ServiceStatusReport) {
      if (!handle) return;
      SetServiceStatus(handle, {
        dwServiceType: r.serviceType,
        dwCurrentState: r.currentState,
        dwControlsAccepted: r.controlsAccepted,
        dwWin32ExitCode: r.win32ExitCode,
        dwServiceSpecificExitCode: r.serviceSpecificExitCode,
        dwCheckPoint: r.checkPoint,
        dwWaitHint: r.waitHintMs,
      });
    },
  };
}
