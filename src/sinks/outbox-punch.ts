import type { Punch } from "../core/punch.ts";
import type { OutboxEntry } from "../store/store.ts";

/** The punch an outbox entry carries, or why it carries none a receiver could take. */
export type OutboxPunch =
  | { readonly ok: true; readonly punch: Punch; readonly local: string }
  | { readonly ok: false; readonly reason: string };

const WALL_TIME = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Reads an outbox body as a punch, with its device-local wall time as "YYYY-MM-DD HH:MM:SS" (the time as the terminal
 * showed it: `time` carries the device's own offset, so its digits are the terminal's clock). A body that is no punch
 * is the punch's own fault, never the receiver's: the caller quarantines it with `reason`.
 */
export function outboxPunch(entry: OutboxEntry): OutboxPunch {
  let punch: Punch;
  try {
    punch = JSON.parse(entry.body) as Punch;
  } catch {
    return { ok: false, reason: "the outbox body is not JSON" };
  }
  if (typeof punch !== "object" || punch === null) return { ok: false, reason: "the outbox body is not a punch" };
  if (typeof punch.userId !== "string" || punch.userId === "") return { ok: false, reason: "the punch has no userId" };
  if (typeof punch.deviceSerial !== "string") return { ok: false, reason: "the punch has no deviceSerial" };
  const wall = typeof punch.time === "string" ? WALL_TIME.exec(punch.time) : null;
  if (!wall) return { ok: false, reason: `the punch time ${JSON.stringify(punch.time)} is not ISO 8601` };
  return { ok: true, punch, local: `${wall[1]} ${wall[2]}` };
}
