import { driftAdvice } from "../core/clock-drift.ts";
import { clause } from "../core/sentence.ts";
import { formatDuration } from "../supervisor/supervisor.ts";
import type { Attention, ConnectorStatus } from "./status-api.ts";

export interface SourceLimits {
  readonly pollIntervalMs: number;
  readonly maxClockDriftMs?: number | undefined;
  /** The source's `timezone`, named when a terminal's clock looks like it is read in the wrong one. */
  readonly timezone?: string | undefined;
}

const STALE_OUTBOX_MS = 10 * 60_000;
/** How long a given-up row id stays on the page: long enough to be seen on the next working day's first look. */
export const EXPIRED_GAP_NOTICE_MS = 24 * 3_600_000;

/**
 * The fix for a config that was not applied, by cause: only a config that decrypted but did not validate is the
 * config's fault. A cloud that failed to answer is retried, and sending the operator to edit a good config for it
 * would be wrong advice.
 */
export function configFix(code: string): string {
  switch (code) {
    case "CONFIG_INVALID":
      return "Fix the config in the cloud and publish a new version.";
    case "CONFIG_STALE":
      return "Publish the change as a new version; a version not newer than the running one is never applied.";
    case "CONFIG_DECRYPT":
      return "The config was sealed for another node or secret: publish it again for this node id, or re-enroll if the node was re-added in the cloud.";
    case "CLOUD_AUTH":
      return "Check this machine's clock (within 5 minutes of real time) and that the node secret is current (bioapi enroll).";
    case "STORE_FULL":
      return "The data disk is full, so the new config cannot be kept; it is applied once there is room (see the disk item).";
    case "CONFIG_FETCH":
      return "The cloud refused the config fetch (the message names why); check the cloud URL and that a config is published for this node. The fetch is retried by itself.";
    default:
      return "The cloud could not be reached or failed to answer; the fetch is retried by itself. If this lasts, check outbound HTTPS, the proxy, and the cloud's own status.";
  }
}

/**
 * Turns a status snapshot into the sentences an operator needs: what is wrong, and what to do. Peers' users most
 * often report "connected, but nothing arrives, and no error says why"; every path to that state (cloud gone,
 * no config, delivery refused, a source failing or silent, an empty log) yields a line here.
 */
export function attention(
  s: Omit<ConnectorStatus, "attention">,
  limits: ReadonlyMap<string, SourceLimits>,
  now: number,
): Attention[] {
  const out: Attention[] = [];
  const add = (severity: Attention["severity"], subject: string, message: string, fix: string) =>
    out.push({ severity, subject, message, fix });

  if (s.disk.state === "full") {
    const waiting = Math.max(0, s.outbox.depth - s.shipper.unsaved).toLocaleString("en-US");
    const holds = s.disk.volume === s.disk.dataDir ? "" : ` (it holds ${s.disk.dataDir})`;
    add(
      "error",
      "disk",
      `The data disk is full: ${waiting} punches waiting; free space on ${s.disk.volume}${holds}.`,
      "Delete or move files on that volume, or grow it. Until then sources are paused and nothing is sent; the connector checks by itself, resumes once there is room, and loses nothing.",
    );
  }
  if (s.connectivity.state === "offline") {
    const since = s.connectivity.history.at(-1);
    add(
      "error",
      "cloud",
      `The cloud has not answered since ${since?.at ?? "the start"}: ${clause(since?.reason ?? "no answer")}.`,
      "Check this machine's internet access, proxy and firewall for outbound HTTPS to the cloud. Punches are kept and sent when it answers.",
    );
  }
  if (s.config.version === null) {
    add(
      "error",
      "config",
      `No configuration yet, so no source runs${s.config.lastError ? `: ${s.config.lastError.message}` : "."}`,
      !s.config.lastError || s.config.lastError.code === "CONFIG_FETCH"
        ? "Publish a config for this node in the cloud; the connector fetches it by itself."
        : configFix(s.config.lastError.code),
    );
  } else if (s.config.lastError) {
    add(
      "warning",
      "config",
      s.config.lastError.message,
      `Version ${s.config.version} keeps running. ${configFix(s.config.lastError.code)}`,
    );
  }
  const [first] = s.sinks;
  const firstBacklog = first?.backlog ?? s.outbox.depth;
  const toFirst = first && s.sinks.length > 1 ? ` to sink ${first.id}` : "";
  if (s.shipper.lastError && firstBacklog > 0 && s.disk.state !== "full") {
    add(
      "error",
      "outbox",
      `${firstBacklog} punches are not being delivered${toFirst}: ${s.shipper.lastError.message}`,
      "The connector retries by itself with backoff; the message names the cause.",
    );
  } else if ((s.outbox.oldestUnsentAgeMs ?? 0) > STALE_OUTBOX_MS && s.connectivity.state === "online") {
    add(
      "warning",
      "outbox",
      `The oldest unsent punch has waited ${formatDuration(s.outbox.oldestUnsentAgeMs ?? 0)}.`,
      "Delivery is slower than reading; check the cloud's answers in the log.",
    );
  }
  // The first sink is the one above; every other sink that is failing says so on its own line.
  for (const sink of s.sinks.slice(1)) {
    if (!sink.lastError || sink.backlog === 0 || s.disk.state === "full") continue;
    add(
      "error",
      `sink:${sink.id}`,
      `Sink ${sink.id} (${sink.kind}): ${sink.backlog} punches are not being delivered: ${sink.lastError.message}`,
      "It retries by itself with backoff, and the other sinks keep delivering. Its backlog holds punches in the outbox: past outbox.highWater the sources wait for it.",
    );
  }
  if (s.outbox.quarantined > 0) {
    add(
      "warning",
      "outbox",
      `${s.outbox.quarantined} rows are in quarantine: rows that could not become punches, or punches the cloud rejected.`,
      'They never block the queue. Each is logged with its reason ("quarantined", "rejected by the cloud").',
    );
  }

  for (const w of s.sources) {
    const limit = limits.get(w.sourceId);
    if (w.lastError && (w.state === "backoff" || w.state === "starting")) {
      add(
        "error",
        w.sourceId,
        `${w.lastError.code}: ${w.lastError.message}`,
        `The source retries with backoff (${w.restarts} so far); bioapi doctor checks it end to end.`,
      );
      continue;
    }
    if (w.state === "throttled") {
      add(
        "warning",
        w.sourceId,
        `Reading is held back: ${s.outbox.depth} punches wait in the outbox.`,
        "It resumes as the cloud acknowledges punches.",
      );
    }
    const staleAfter = Math.max(60_000, 3 * (limit?.pollIntervalMs ?? 5000));
    if (w.state === "running" && !w.backlog && w.lagMs !== null && w.lagMs > staleAfter) {
      add(
        "warning",
        w.sourceId,
        `No poll has completed for ${formatDuration(w.lagMs)}.`,
        "A read may be hanging; the source times out and restarts by itself. Check the device or database load.",
      );
    }
    if (w.lastPollAt && w.emitted === 0 && w.duplicates === 0 && w.lastPunchTime === null) {
      const empty = w.device ? w.device.records === 0 : Object.keys(w.cursor).every((k) => k.startsWith("#"));
      if (empty)
        add(
          "warning",
          w.sourceId,
          w.device
            ? `Connected to terminal ${w.device.serial}, but its log holds no punches.`
            : "Connected, but the table holds no rows this source reads.",
          w.device
            ? "Punch on the terminal to test it; check it records attendance and was not just cleared."
            : "Check table, filter and preset with bioapi doctor.",
        );
    }
    const late = w.lateRows;
    const expiredAt = late?.lastExpiredAt ? Date.parse(late.lastExpiredAt) : Number.NaN;
    if (late && now - expiredAt < EXPIRED_GAP_NOTICE_MS) {
      add(
        "warning",
        w.sourceId,
        `${late.expiredIds} row id(s) below rows already read never appeared, the last given up at ${late.lastExpiredAt}: rolled-back inserts, or rows committed later than lateRowWindowMs, which are not read.`,
        'The log names the ids; rolled-back inserts need nothing. If those ids are in the table now, they were committed late: raise lateRowWindowMs past your longest import or transaction (docs/operations.md, "Row ids given up").',
      );
    }
    const drift = w.device?.clockDriftMs;
    if (drift !== undefined && limit?.maxClockDriftMs !== undefined && Math.abs(drift) >= limit.maxClockDriftMs) {
      const advice = driftAdvice(drift, limit.timezone ?? "UTC");
      add("warning", w.sourceId, advice.message, advice.fix);
    }
  }
  return out;
}
