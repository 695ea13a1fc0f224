import type { Step } from "../windows/install.ts";
import { CONNECTOR_UNIT, MONITOR_UNIT, SERVICE_USER } from "./units.ts";

export function systemdInstallSteps(): Step[] {
  return [
    {
      file: "sh",
      args: [
        "-c",
        `id -u ${SERVICE_USER} >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ${SERVICE_USER}`,
      ],
      why: `system user ${SERVICE_USER}`,
    },
    { file: "systemctl", args: ["daemon-reload"], why: "load the unit files" },
    { file: "systemctl", args: ["enable", CONNECTOR_UNIT, MONITOR_UNIT], why: "start at boot" },
  ];
}

export function systemdUninstallSteps(): Step[] {
  return [
    {
      file: "systemctl",
      args: ["disable", "--now", MONITOR_UNIT, CONNECTOR_UNIT],
      accept: [1, 5],
      why: "stop and disable",
    },
    { file: "systemctl", args: ["daemon-reload"], why: "forget the unit files" },
  ];
}
