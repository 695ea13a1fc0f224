/**
 * The two systemd units. Hardening follows systemd.exec(5) as far as Node tolerates it: no MemoryDenyWriteExecute
 * (V8's JIT needs writable+executable pages). Checked by `systemd-analyze verify` and `security --offline` in tests.
 */

export const CONNECTOR_UNIT = "cams-bioapi.service";
export const MONITOR_UNIT = "cams-bioapi-monitor.service";
export const SERVICE_USER = "cams-bioapi";
export const STATE_DIR = "/var/lib/cams-bioapi";
export const LOG_DIR = "/var/log/cams-bioapi";

export interface UnitOptions {
  /** The program: the single executable, or node plus the entry script. Absolute paths. */
  readonly command: readonly string[];
  /** Load the key-encryption key with LoadCredentialEncrypted= (systemd-creds); else the 0600 key file is used. */
  readonly credential: { readonly name: string; readonly path: string } | null;
  /** The operations guide as installed beside the program; Documentation= is left out when there is none. */
  readonly documentation?: string;
}

/** systemd splits ExecStart= on whitespace and treats quotes, backslashes, $ and % specially. */
export function execLine(args: readonly string[]): string {
  return args
    .map((a) => {
      const escaped = a.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%").replace(/\$/g, "$$$$");
      return /[\s"'\\]/.test(a) ? `"${escaped}"` : escaped;
    })
    .join(" ");
}

const COMMON_HARDENING = [
  "NoNewPrivileges=yes",
  "ProtectSystem=strict",
  "ProtectHome=yes",
  "PrivateTmp=yes",
  "PrivateDevices=yes",
  "ProtectKernelTunables=yes",
  "ProtectKernelModules=yes",
  "ProtectKernelLogs=yes",
  "ProtectControlGroups=yes",
  "ProtectClock=yes",
  "ProtectHostname=yes",
  "RestrictNamespaces=yes",
  "RestrictRealtime=yes",
  "RestrictSUIDSGID=yes",
  "LockPersonality=yes",
  "SystemCallArchitectures=native",
  "SystemCallFilter=@system-service",
  "SystemCallFilter=~@privileged @resources",
  "UMask=0077",
];

export function connectorUnit(o: UnitOptions): string {
  const exec = execLine([
    ...o.command,
    "run",
    "--service",
    "--data-dir",
    STATE_DIR,
    "--log-dir",
    LOG_DIR,
    "--log-format",
    "json",
  ]);
  return `# Written by bioapi service install. Changes are overwritten by the next install.
[Unit]
Description=Cams Bio API Service (attendance connector)
${o.documentation ? `Documentation=file://${encodeURI(o.documentation)}\n` : ""}After=network-online.target
Wants=network-online.target
# Five failed starts in ten minutes leave the unit failed: a crash loop is for a person to look at.
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
ExecStart=${exec}
# Pinged every 30 s, and only while sources poll and the outbox drains: a hang or a stall ends in a restart.
WatchdogSec=60s
Restart=on-failure
RestartSec=5s
TimeoutStartSec=90s
TimeoutStopSec=30s
User=${SERVICE_USER}
Group=${SERVICE_USER}
StateDirectory=cams-bioapi
StateDirectoryMode=0700
LogsDirectory=cams-bioapi
LogsDirectoryMode=0750
${o.credential ? `LoadCredentialEncrypted=${o.credential.name}:${o.credential.path}\n` : ""}Environment=NODE_ENV=production
${COMMON_HARDENING.join("\n")}
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
PrivateUsers=yes
RemoveIPC=yes

[Install]
WantedBy=multi-user.target
`;
}

export function monitorUnit(o: UnitOptions): string {
  const exec = execLine([
    ...o.command,
    "monitor",
    "--manager",
    "systemd",
    "--unit",
    CONNECTOR_UNIT,
    "--data-dir",
    STATE_DIR,
  ]);
  return `# Written by bioapi service install. Changes are overwritten by the next install.
[Unit]
Description=Cams Bio API Service monitor (restarts a hung or stalled connector)
After=${CONNECTOR_UNIT}

[Service]
Type=simple
ExecStart=${exec}
Restart=always
RestartSec=10s
# Root, because it starts and kills the connector through systemctl; no network, no capabilities beyond that.
User=root
ReadWritePaths=${STATE_DIR}
${COMMON_HARDENING.join("\n")}
CapabilityBoundingSet=CAP_KILL CAP_DAC_OVERRIDE
RestrictAddressFamilies=AF_UNIX
IPAddressDeny=any

[Install]
WantedBy=multi-user.target
`;
}
