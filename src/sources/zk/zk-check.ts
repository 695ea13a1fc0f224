import type { ZkSourceConfig } from "../../config/config-schema.ts";
import type { Finding } from "../../core/check.ts";
import { systemClock } from "../../core/clock.ts";
import { driftAdvice, driftWords } from "../../core/clock-drift.ts";
import { describeError } from "../../core/errors.ts";
import type { RunningSource, SourceCheck } from "../source-check.ts";
import { openZkSession, readClockDrift } from "./open-zk-session.ts";
import type { ZkClient } from "./zk-client.ts";

/**
 * A terminal, as the source opens it: it answers, accepts the comm key, is the terminal the config names, reports its
 * log, and has a clock close to ours. A terminal doctor cannot open may still be read by the running connector.
 */
export const checkTerminal: SourceCheck<ZkSourceConfig> = async ({ config, running }, signal) => {
  const subject = `terminal ${config.id} (${config.host}:${config.port}/${config.transport})`;
  const out: Finding[] = [];
  let client: ZkClient;
  try {
    client = await openZkSession(config, signal);
  } catch (error) {
    return refused(config, subject, describeError(error), running);
  }
  try {
    out.push({ subject, check: "reachable", status: "ok", detail: `connected over ${config.transport}` });
    out.push({
      subject,
      check: "authenticated",
      status: "ok",
      detail: config.commKey ? "comm key accepted" : "no comm key needed",
    });
    await readTerminal(config, subject, client, out);
  } catch (error) {
    out.push({
      subject,
      check: "read",
      status: "fail",
      detail: describeError(error).message,
      fix: "The terminal connected but did not answer a read: check its firmware and that no other program holds it.",
    });
  } finally {
    await client.close();
  }
  return out;
};

/** Identity, log size and clock: what a session that opened can tell. */
async function readTerminal(config: ZkSourceConfig, subject: string, client: ZkClient, out: Finding[]): Promise<void> {
  const info = await client.info();
  if (config.serial && info.serial !== config.serial) {
    out.push({
      subject,
      check: "identity",
      status: "fail",
      detail: `The terminal reports serial ${info.serial}, the config expects ${config.serial}.`,
      fix: "The address now belongs to another terminal: fix host, or serial if the terminal was replaced.",
    });
  }
  const used = info.sizes.recordCapacity
    ? `, ${Math.round((info.sizes.records * 100) / info.sizes.recordCapacity)}% full`
    : "";
  out.push({
    subject,
    check: "records",
    status: "ok",
    detail: `${info.serial}${info.deviceName ? ` (${info.deviceName})` : ""}: ${info.sizes.records} records, ${info.sizes.users} users${used}`,
  });
  const drift = await readClockDrift(client, config.timezone, systemClock);
  const advice = driftAdvice(drift, config.timezone);
  out.push(
    Math.abs(drift) >= config.maxClockDriftMs
      ? { subject, check: "clock", status: "warn", detail: advice.message, fix: advice.fix }
      : { subject, check: "clock", status: "ok", detail: driftWords(drift) },
  );
}

/** The running connector reads this terminal well: polled within three intervals, no error since. */
function readByConnector(config: ZkSourceConfig, worker: RunningSource | undefined): worker is RunningSource {
  if (worker?.state !== "running" || worker.lastError || !worker.lastPollAt) return false;
  return Date.now() - Date.parse(worker.lastPollAt) <= 3 * config.pollIntervalMs + 5000;
}

/**
 * The session was refused. Many terminals serve one connection at a time, and a running connector holds it: what
 * the connector sees of a terminal doctor cannot open turns a false "unreachable" into the truth.
 */
function refused(
  config: ZkSourceConfig,
  subject: string,
  d: { readonly code: string; readonly message: string },
  worker: RunningSource | undefined,
): Finding[] {
  if (d.code === "DEVICE_AUTH")
    return [
      { subject, check: "reachable", status: "ok", detail: "the terminal answers" },
      {
        subject,
        check: "authenticated",
        status: "fail",
        detail: d.message,
        fix: "Set commKey in the source config to the terminal's COMM Key (Menu → Comm → Connection), or 0 if it has none.",
      },
    ];
  if (d.code !== "DEVICE_MISMATCH" && readByConnector(config, worker))
    return [
      {
        subject,
        check: "reachable",
        status: "ok",
        detail: `the running connector holds the terminal's session and reads it (last poll ${worker.lastPollAt}${worker.device ? `, ${worker.device.records ?? "?"} records, serial ${worker.device.serial}` : ""}); doctor's own session was refused (${d.code})`,
      },
    ];
  return [
    {
      subject,
      check: "reachable",
      status: "fail",
      detail: `${d.code}: ${d.message}`,
      fix:
        d.code === "DEVICE_BUSY"
          ? "Another program holds the terminal's only connection: stop it (old attendance software, a second connector). If it is this connector, `bioapi status` shows how it reads the terminal."
          : `Check that the terminal is on, has address ${config.host} (DHCP may have moved it), and that port ${config.port}/${config.transport} is open between this machine and it.`,
    },
  ];
}
