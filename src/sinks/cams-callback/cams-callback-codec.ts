import { createHash } from "node:crypto";
import { BioError } from "../../core/errors.ts";
import type { Punch, PunchState, PunchVerify } from "../../core/punch.ts";

/**
 * The Cams Web API real-time punch callback ("RealTime" operation), as its public samples show it
 * (camsbiometrics.com/application/biometric-web-api.html, nialabs.in/docs/punch-log-callback, and the consumer side in
 * docs.navari.co.ke/cams-biometric/api-endpoint-reference and .../punch-types-log-types).
 */
export interface CamsRealTimeBody {
  readonly RealTime: {
    readonly OperationID: string;
    readonly SerialNumber: string;
    readonly LabelName: string;
    readonly PunchLog: {
      readonly Type: string;
      readonly InputType: string;
      readonly UserId: string;
      readonly LogTime: string;
      readonly Temperature: string;
    };
    readonly AuthToken: string;
    readonly Time: string;
  };
}

/**
 * Type per punch state, spelled as the Cams gateway sends it ("OverTimeIn" with a capital T, per the navari
 * consumer's table). A state the connector does not know is "Unknown": a consumer that maps Type to in/out leaves
 * it alone rather than book a false check-in.
 */
export const CAMS_PUNCH_TYPES = {
  checkIn: "CheckIn",
  checkOut: "CheckOut",
  breakOut: "BreakOut",
  breakIn: "BreakIn",
  overtimeIn: "OverTimeIn",
  overtimeOut: "OverTimeOut",
  other: "Unknown",
} as const satisfies Record<PunchState, string>;

/** InputType per verify mode, in the spellings the Cams pages list (Fingerprint, Face, Card, Palm, Password...). */
export const CAMS_INPUT_TYPES = {
  fingerprint: "Fingerprint",
  face: "Face",
  card: "Card",
  password: "Password",
  palm: "Palm",
  other: "Unknown",
  unknown: "Unknown",
} as const satisfies Record<PunchVerify, string>;

const ISO_WITH_OFFSET = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * "2024-09-17 08:00:00 GMT +0300": the device's wall-clock time and its offset, read straight off the punch's ISO
 * time, which already carries the device's offset. Converting through Date would put it in the host's zone.
 */
export function camsLogTime(iso: string): string {
  const m = ISO_WITH_OFFSET.exec(iso);
  if (!m) {
    throw new BioError("ROW_INVALID", `The punch time "${iso.slice(0, 64)}" is not ISO 8601 with a UTC offset.`, {
      hint: "The source wrote a time the Cams callback cannot carry; the punch is kept in this sink's quarantine.",
    });
  }
  const [, date, hm, seconds, zone] = m as unknown as [string, string, string, string | undefined, string];
  const offset = zone.toUpperCase() === "Z" ? "+0000" : zone.replace(":", "");
  return `${date} ${hm}${seconds ?? ":00"} GMT ${offset}`;
}

/** The send time, in UTC, as the samples' `Time` shows it. */
export function camsSendTime(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} GMT +0000`;
}

/**
 * A UUID-shaped id that is the same every time this punch is sent, so a receiver that dedupes on OperationID
 * (as the Cams samples invite: it is the operation's identity) sees a retry as the same operation.
 */
export function camsOperationId(punchId: string): string {
  const hex = /^[0-9a-f]{32}$/.test(punchId)
    ? punchId
    : createHash("sha256").update(punchId).digest("hex").slice(0, 32);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The customer's URL with `stgid=<serial>` in its query, beside whatever query it already has. */
export function camsCallbackUrl(base: string, serial: string): string {
  const url = new URL(base);
  url.searchParams.set("stgid", serial);
  return url.toString();
}

export interface CamsEncodeOptions {
  readonly authToken: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly nowMs: number;
}

export interface CamsRequest {
  readonly serial: string;
  readonly body: string;
}

/** One outbox body (a Punch's JSON) as a callback body. Throws a BioError for a punch the callback cannot carry. */
export function encodeCamsPunch(body: string, options: CamsEncodeOptions): CamsRequest {
  let punch: Punch;
  try {
    punch = JSON.parse(body) as Punch;
  } catch (cause) {
    throw new BioError("ROW_INVALID", "An outbox entry is not a punch's JSON.", { cause });
  }
  if (typeof punch.id !== "string" || typeof punch.deviceSerial !== "string" || typeof punch.userId !== "string") {
    throw new BioError("ROW_INVALID", "An outbox entry lacks the punch's id, deviceSerial or userId.");
  }
  const out: CamsRealTimeBody = {
    RealTime: {
      OperationID: camsOperationId(punch.id),
      SerialNumber: punch.deviceSerial,
      LabelName: options.labels[punch.deviceSerial] ?? punch.deviceSerial,
      PunchLog: {
        Type: lookup(CAMS_PUNCH_TYPES, punch.state, CAMS_PUNCH_TYPES.other),
        InputType: lookup(CAMS_INPUT_TYPES, punch.verify, CAMS_INPUT_TYPES.unknown),
        UserId: punch.userId,
        LogTime: camsLogTime(String(punch.time)),
        // The connector reads no temperature; the samples send "" when the terminal has none.
        Temperature: "",
      },
      AuthToken: options.authToken,
      Time: camsSendTime(options.nowMs),
    },
  };
  return { serial: punch.deviceSerial, body: JSON.stringify(out) };
}

/** Own keys only: a state read from a database could be "constructor". */
function lookup(map: Readonly<Record<string, string>>, key: unknown, fallback: string): string {
  return typeof key === "string" && Object.hasOwn(map, key) ? (map[key] as string) : fallback;
}
