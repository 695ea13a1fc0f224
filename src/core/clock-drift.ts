import { formatDuration } from "./duration.ts";

const HALF_HOUR_MS = 30 * 60_000;
/** How far from a whole number of half-hours still counts as one: a clock set by hand is a minute or two off. */
const ZONE_SLACK_MS = 2 * 60_000;

/** `5 h 30 min ahead of this machine`, `3 s behind this machine`, `in step with this machine`. */
export function driftWords(driftMs: number): string {
  if (Math.abs(driftMs) < 500) return "in step with this machine";
  return driftMs > 0
    ? `${formatDuration(driftMs)} ahead of this machine`
    : `${formatDuration(-driftMs)} behind this machine`;
}

/**
 * A terminal whose clock is off by a whole number of half-hours (5 h 30 min, -8 h) almost always shows the right
 * local time under a wrong `timezone` in the source config: every zone offset in use is a multiple of 30 or 45 min.
 */
export function looksLikeTimeZone(driftMs: number): boolean {
  const abs = Math.abs(driftMs);
  if (abs < HALF_HOUR_MS - ZONE_SLACK_MS) return false;
  return Math.abs(abs - Math.round(abs / HALF_HOUR_MS) * HALF_HOUR_MS) <= ZONE_SLACK_MS;
}

export interface DriftAdvice {
  readonly message: string;
  readonly fix: string;
}

/** What to tell the operator about a terminal clock beyond maxClockDriftMs: the figure, and the likely fix first. */
export function driftAdvice(driftMs: number, timezone: string): DriftAdvice {
  const message = `The terminal's clock is ${driftWords(driftMs)}; punches carry its time.`;
  if (looksLikeTimeZone(driftMs)) {
    return {
      message: `${message} A whole number of half-hours is most likely a wrong time zone, not a wrong clock.`,
      fix: `Check the source's timezone (now ${timezone}) against where the terminal is; if it is right, set the time on the terminal or turn on syncClock.`,
    };
  }
  return { message, fix: "Set the time on the terminal, or turn on syncClock for this source." };
}

/** The drift rounded as the operator sees it; a warning is logged again only when this changes. */
export function driftKey(driftMs: number): string {
  return driftWords(Math.round(driftMs / 60_000) * 60_000);
}
