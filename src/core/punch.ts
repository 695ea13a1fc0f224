import { createHash } from "node:crypto";
import type { LocalDateTime } from "./local-time.ts";

export const PUNCH_SOURCES = ["zk", "database", "push"] as const;
export type PunchSource = (typeof PUNCH_SOURCES)[number];

/** ZK / attendance-software state codes. Unknown codes keep their number and map to "other". */
export const STATE_NAMES = {
  0: "checkIn",
  1: "checkOut",
  2: "breakOut",
  3: "breakIn",
  4: "overtimeIn",
  5: "overtimeOut",
} as const;

/** ZK verify-mode codes (the common subset; see docs/configuration.md). */
export const VERIFY_NAMES = {
  0: "password",
  1: "fingerprint",
  2: "card",
  3: "password",
  4: "card",
  9: "fingerprint",
  15: "face",
  25: "palm",
} as const;

export type PunchState = (typeof STATE_NAMES)[keyof typeof STATE_NAMES] | "other";
export type PunchVerify = (typeof VERIFY_NAMES)[keyof typeof VERIFY_NAMES] | "other" | "unknown";

export interface Punch {
  /** Stable id: see {@link punchId}. The outbox and the cloud dedupe on it. */
  readonly id: string;
  readonly deviceSerial: string;
  readonly userId: string;
  /** ISO 8601 with the device's UTC offset. */
  readonly time: string;
  readonly state: PunchState;
  readonly stateCode: number;
  /** The source's own state value when it is no state code (text the connector does not know): `state` is "other". */
  readonly stateRaw?: string;
  readonly verify: PunchVerify;
  readonly verifyCode: number | null;
  readonly workCode?: string;
  readonly source: PunchSource;
  readonly collectedAt: string;
}

/**
 * id = first 32 hex digits of SHA-256(serial ␟ user ␟ device-local time ␟ state code). Deterministic, so a re-read,
 * a restart, or the same punch arriving by another transport collapses into one.
 */
export function punchId(deviceSerial: string, userId: string, local: LocalDateTime, stateCode: number): string {
  return createHash("sha256")
    .update(`${deviceSerial}\u001f${userId}\u001f${local}\u001f${stateCode}`)
    .digest("hex")
    .slice(0, 32);
}

/** The state code of a state the source wrote as something that is no code; its name is "other". */
export const UNKNOWN_STATE_CODE = -1;

export function stateName(code: number): PunchState {
  return (STATE_NAMES as Record<number, PunchState>)[code] ?? "other";
}

export function verifyName(code: number | null): PunchVerify {
  if (code === null) return "unknown";
  return (VERIFY_NAMES as Record<number, PunchVerify>)[code] ?? "other";
}

export interface PunchInput {
  readonly deviceSerial: string;
  readonly userId: string;
  readonly local: LocalDateTime;
  readonly iso: string;
  readonly stateCode: number;
  readonly stateRaw?: string | undefined;
  readonly verifyCode: number | null;
  readonly workCode?: string | undefined;
  readonly source: PunchSource;
  readonly collectedAt: string;
}

export function makePunch(input: PunchInput): Punch {
  const punch: Punch = {
    id: punchId(input.deviceSerial, input.userId, input.local, input.stateCode),
    deviceSerial: input.deviceSerial,
    userId: input.userId,
    time: input.iso,
    state: stateName(input.stateCode),
    stateCode: input.stateCode,
    ...(input.stateRaw === undefined ? {} : { stateRaw: input.stateRaw }),
    verify: verifyName(input.verifyCode),
    verifyCode: input.verifyCode,
    source: input.source,
    collectedAt: input.collectedAt,
  };
  return input.workCode ? { ...punch, workCode: input.workCode } : punch;
}
