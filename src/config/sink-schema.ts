import { z } from "zod";

/**
 * The `sinks` section: where punches go. Each entry has a stable id (its delivery state is kept under it) and a
 * kind. No section means one Cams cloud sink, the enrolled cloud, exactly as before the section existed.
 */

const SINK_ID_MESSAGE = "must be lower-case letters, digits, - and _, at most 64";
const sinkId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, SINK_ID_MESSAGE)
  .meta({
    description: "Stable id of the sink; its delivery state is kept under it. Renaming it makes a new sink.",
    errorMessage: SINK_ID_MESSAGE,
  });

const URL_MESSAGE = "must be an http:// or https:// URL";
const httpUrl = z
  .string()
  .max(2048)
  .regex(/^https?:\/\/[^\s/?#]+/i, URL_MESSAGE)
  .meta({ errorMessage: URL_MESSAGE });

/** Secrets are kept only in the encrypted config: never logged, never shown in status or errors. */
const secret = (what: string) => z.string().min(1).max(4096).describe(`${what}. Redacted everywhere.`);

const backfillFrom = z.iso
  .datetime({ offset: true })
  .optional()
  .describe(
    "A sink added to a running connector delivers from the moment it is added. With this, it also gets every punch from this time on that the store still holds: the outbox, and the punches delivered in the last 7 days.",
  );

/** Delivery tuning per sink; absent fields use the `shipper` section. */
const delivery = {
  batchSize: z.number().int().min(1).max(10_000).optional().describe("Punches per request; default: shipper."),
  maxInFlight: z.number().int().min(1).max(8).optional().describe("Batches travelling at once; default: shipper."),
  requestTimeoutMs: z.number().int().min(100).max(300_000).optional(),
  maxBackoffMs: z.number().int().min(100).max(3_600_000).optional(),
  backfillFrom,
};

/** Requests of a one-punch-per-request protocol travelling at once; each user's punches stay in order. */
const concurrency = z
  .number()
  .int()
  .min(1)
  .max(64)
  .default(8)
  .describe("Requests at once (one punch each). Punches of one user are never sent concurrently.");

const extraHeaders = z
  .record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().max(4096))
  .optional()
  .describe("Extra request headers (an API gateway's key, say). Their values are treated as secrets.");

export const camsCloudSinkSchema = z
  .object({ id: sinkId, kind: z.literal("cams-cloud"), ...delivery })
  .strict()
  .describe("The enrolled Cams cloud, over its signed protocol. At most one.");

export const camsCallbackSinkSchema = z
  .object({
    id: sinkId,
    kind: z.literal("cams-callback"),
    url: httpUrl.describe("The customer's callback URL; `stgid=<serial>` is added to its query."),
    authToken: secret("Sent as RealTime.AuthToken, as the Cams Web API does").optional(),
    labels: z
      .record(z.string().max(64), z.string().max(256))
      .optional()
      .describe("RealTime.LabelName per serial; default: the serial."),
    concurrency,
    headers: extraHeaders,
    ...delivery,
  })
  .strict()
  .describe("The Cams Web API real-time punch callback, one punch per POST.");

export const admsRelaySinkSchema = z
  .object({
    id: sinkId,
    kind: z.literal("adms-relay"),
    url: httpUrl.describe("The ADMS server's base URL (http://host:port); /iclock/... is added."),
    serials: z
      .array(z.string().min(1).max(64))
      .max(5000)
      .optional()
      .describe("Forward only these terminals; default: every terminal."),
    heartbeatIntervalMs: z
      .number()
      .int()
      .min(1000)
      .max(3_600_000)
      .default(30_000)
      .describe("How often each terminal calls /iclock/getrequest."),
    pushVersion: z.string().max(16).default("2.4.1").describe("The PushVersion announced in the handshake."),
    ...delivery,
  })
  .strict()
  .describe("ZKTeco PUSH (ADMS/iclock) upstream, posing as each terminal by its serial.");

export const ERPNEXT_LOG_TYPES = ["IN", "OUT", "skip"] as const;

export const erpnextSinkSchema = z
  .object({
    id: sinkId,
    kind: z.literal("erpnext"),
    url: httpUrl.describe("The ERPNext site, e.g. https://erp.example.com."),
    apiKey: z.string().min(1).max(256).describe("The API key of the user the check-ins are made as."),
    apiSecret: secret("Its API secret"),
    method: z
      .enum(["hrms", "erpnext"])
      .default("hrms")
      .describe(
        "hrms: hrms.hr.doctype.employee_checkin.employee_checkin.add_log_based_on_employee_field (Frappe HR, v14+). erpnext: the same method under erpnext.hr... (ERPNext v13 and older).",
      ),
    employeeField: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,63}$/)
      .default("attendance_device_id")
      .describe("The Employee field that holds the device user id."),
    logTypes: z
      .object({
        checkIn: z.enum(ERPNEXT_LOG_TYPES).default("IN"),
        checkOut: z.enum(ERPNEXT_LOG_TYPES).default("OUT"),
        breakOut: z.enum(ERPNEXT_LOG_TYPES).default("OUT"),
        breakIn: z.enum(ERPNEXT_LOG_TYPES).default("IN"),
        overtimeIn: z.enum(ERPNEXT_LOG_TYPES).default("IN"),
        overtimeOut: z.enum(ERPNEXT_LOG_TYPES).default("OUT"),
        other: z.enum([...ERPNEXT_LOG_TYPES, "none"]).default("none"),
      })
      .strict()
      .default({
        checkIn: "IN",
        checkOut: "OUT",
        breakOut: "OUT",
        breakIn: "IN",
        overtimeIn: "IN",
        overtimeOut: "OUT",
        other: "none",
      })
      .describe("log_type per punch state; none: sent without log_type; skip: not sent (counted as delivered)."),
    deviceIds: z
      .record(z.string().max(64), z.string().max(256))
      .optional()
      .describe("device_id per serial; default: the serial."),
    concurrency,
    ...delivery,
  })
  .strict()
  .describe("ERPNext / Frappe HR Employee Checkin.");

export const webhookSinkSchema = z
  .object({
    id: sinkId,
    kind: z.literal("webhook"),
    url: httpUrl,
    secret: secret(
      "The Standard Webhooks signing secret: whsec_ followed by base64 (24 to 64 bytes); a bare base64 string is accepted too",
    ),
    headers: extraHeaders,
    ...delivery,
  })
  .strict()
  .describe("JSON batches signed per the Standard Webhooks convention.");

/**
 * A topic template: levels split by "/", none empty, no wildcard (+ #, which a PUBLISH topic may not hold), no leading
 * "$" (reserved for the broker's own topics), and only the named placeholders.
 */
function mqttTopicTemplate(placeholders: readonly string[]) {
  const known = new Set(placeholders);
  const allowed = placeholders.map((p) => `{${p}}`).join(", ");
  return z
    .string()
    .min(1)
    .max(512)
    .superRefine((topic, ctx) => {
      const problem = topicTemplateProblem(topic, known, allowed);
      if (problem) ctx.addIssue({ code: "custom", message: `topic "${topic}" ${problem}` });
    });
}

function topicTemplateProblem(topic: string, known: ReadonlySet<string>, allowed: string): string | undefined {
  if (topic.includes("+") || topic.includes("#")) {
    return "holds a wildcard (+ or #), which a published topic may not: name each level";
  }
  if (topic.includes("\u0000")) return "holds a NUL character: remove it";
  if (topic.split("/").some((level) => level === "")) {
    return 'has an empty level (a leading, trailing or double "/"): remove it';
  }
  if (topic.startsWith("$"))
    return 'starts with "$", which brokers keep for their own topics: start with a name of yours';
  const unknown = [...topic.matchAll(/\{([^}]*)\}/g)].map((m) => m[1] as string).find((p) => !known.has(p));
  if (unknown !== undefined) return `names a placeholder it does not have ({${unknown}}): use only ${allowed}`;
  return undefined;
}

export const mqttSinkSchema = z
  .object({
    id: sinkId,
    kind: z.literal("mqtt"),
    url: z
      .string()
      .max(2048)
      .regex(/^(mqtts?|wss?):\/\/[^\s/?#]+/i, "must be an mqtt://, mqtts://, ws:// or wss:// URL")
      .describe("The broker, e.g. mqtts://emqx.example.com:8883."),
    protocolVersion: z
      .union([z.literal(5), z.literal(4)])
      .default(5)
      .describe("5: MQTT 5; 4: MQTT 3.1.1."),
    clientId: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe("Default: cams-<nodeId>-<sink id>. Stable, so the broker keeps the session across restarts."),
    username: z.string().max(256).optional(),
    password: secret("The broker password").optional(),
    topic: mqttTopicTemplate(["nodeId", "serial", "userId", "sourceId"])
      .default("cams/{nodeId}/punches/{serial}")
      .describe("Topic per punch; {nodeId}, {serial}, {userId} and {sourceId} are replaced."),
    statusTopic: mqttTopicTemplate(["nodeId"])
      .default("cams/{nodeId}/status")
      .describe("Retained heartbeat; the last-will on it says offline."),
    statusIntervalMs: z
      .number()
      .int()
      .min(1000)
      .max(86_400_000)
      .default(60_000)
      .describe("How often the retained heartbeat on statusTopic is refreshed."),
    keepaliveS: z.number().int().min(5).max(3600).default(60),
    sessionExpiryS: z
      .number()
      .int()
      .min(0)
      .max(4_294_967_295)
      .default(604_800)
      .describe("MQTT 5: how long the broker keeps this client's session while it is away; default 7 days."),
    tls: z
      .object({
        ca: z.string().max(65_536).optional().describe("PEM CA certificate(s); default: the system store."),
        cert: z.string().max(65_536).optional().describe("PEM client certificate."),
        key: secret("PEM private key of the client certificate").optional(),
        serverName: z.string().max(255).optional(),
        verify: z.boolean().default(true).describe("false: the broker's certificate is not checked."),
      })
      .strict()
      .optional(),
    ...delivery,
  })
  .strict()
  .describe("MQTT 5 or 3.1.1 to a broker (EMQX, Mosquitto), QoS 1 with a persistent session.");

export const sinkSchema = z.discriminatedUnion("kind", [
  camsCloudSinkSchema,
  camsCallbackSinkSchema,
  admsRelaySinkSchema,
  erpnextSinkSchema,
  webhookSinkSchema,
  mqttSinkSchema,
]);

export type SinkConfig = z.infer<typeof sinkSchema>;
export type CamsCloudSinkConfig = z.infer<typeof camsCloudSinkSchema>;
export type CamsCallbackSinkConfig = z.infer<typeof camsCallbackSinkSchema>;
export type AdmsRelaySinkConfig = z.infer<typeof admsRelaySinkSchema>;
export type ErpnextSinkConfig = z.infer<typeof erpnextSinkSchema>;
export type WebhookSinkConfig = z.infer<typeof webhookSinkSchema>;
export type MqttSinkConfig = z.infer<typeof mqttSinkSchema>;

/** The sink a config without a `sinks` section runs: the enrolled Cams cloud, under the id its state is kept by. */
export const DEFAULT_SINKS: readonly SinkConfig[] = [{ id: "cams-cloud", kind: "cams-cloud" }];
