import { BioError } from "../../core/errors.ts";
import { clause } from "../../core/sentence.ts";

/**
 * What a broker's answers mean for the operator. MQTT 5 reason codes are from the OASIS MQTT Version 5.0 standard,
 * 3.2.2.2 (CONNACK) and 3.4.2.1 (PUBACK); MQTT 3.1.1 return codes from its 3.2.2.3. No message here ever holds the
 * password or the URL's user part: brokers are named by host:port.
 */

const CREDENTIALS_FIX =
  "Check the sink's username and password (and that the broker's password file or auth plugin holds that user).";

/** A CONNACK refusal, by protocol version, as one BioError naming the fix. */
export function connackError(code: number, protocolVersion: 4 | 5, where: string): BioError {
  const v5 = protocolVersion === 5;
  const refused = (what: string) => `The MQTT broker ${where} refused the connection: ${what}`;
  const hex = `0x${code.toString(16).padStart(2, "0")}`;
  const context = { reasonCode: code };
  if ((v5 && code === 0x86) || (!v5 && code === 4))
    return new BioError("SINK_AUTH", refused("bad user name or password"), { hint: CREDENTIALS_FIX, context });
  if ((v5 && code === 0x87) || (!v5 && code === 5))
    // Mosquitto answers a wrong password with this too, not with "bad user name or password".
    return new BioError("SINK_AUTH", refused("not authorized"), {
      hint: `${CREDENTIALS_FIX} A broker that takes no anonymous clients needs both; if they are right, its access rules refuse this user or client id.`,
      context,
    });
  if (v5 && code === 0x8a)
    return new BioError("SINK_AUTH", refused("this client is banned"), {
      hint: "Ask the broker's administrator to lift the ban on this client id or user.",
      context,
    });
  if (v5 && code === 0x8c)
    return new BioError("SINK_AUTH", refused("bad authentication method"), {
      hint: "The broker wants an authentication method this sink does not offer: use a username and password, or a client certificate (tls.cert, tls.key).",
      context,
    });
  if ((v5 && code === 0x85) || (!v5 && code === 2))
    return new BioError("SINK_REJECTED", refused("client identifier not valid"), {
      hint: "Set the sink's clientId to one the broker allows (often: at most 23 letters and digits for MQTT 3.1.1).",
      context,
    });
  if ((v5 && code === 0x84) || (!v5 && code === 1))
    return new BioError("SINK_PROTOCOL", refused("it does not speak this MQTT version"), {
      hint: v5 ? "Set protocolVersion: 4 (MQTT 3.1.1) for this broker." : "The broker speaks neither MQTT 3.1.1 nor 5.",
      context,
    });
  if ((v5 && (code === 0x88 || code === 0x89 || code === 0x9f)) || (!v5 && code === 3))
    return new BioError("SINK_UNAVAILABLE", refused(`it is unavailable or busy (${hex})`), {
      hint: "The broker is up but not taking clients now; the sink keeps trying.",
      context,
    });
  return new BioError("SINK_REJECTED", refused(`reason ${hex}`), {
    hint: "See the broker's log for why it refused this client.",
    context,
  });
}

const TLS_TRUST = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
]);

/** A failure to reach the broker or finish the handshake (no CONNACK): a BioError naming where to look. */
export function transportError(error: unknown, where: string): BioError {
  if (error instanceof BioError) return error;
  const code = (error as { code?: unknown }).code;
  const text = clause(error instanceof Error ? error.message : String(error));
  // OpenSSL's message carries its source file and line; its reason alone is what a person reads.
  const reason =
    typeof (error as { reason?: unknown }).reason === "string" ? (error as { reason: string }).reason : undefined;
  const context = { errno: typeof code === "string" ? code : undefined };
  if (code === "ECONNREFUSED")
    return new BioError("SINK_UNAVAILABLE", `Nothing accepts connections at the MQTT broker ${where}.`, {
      hint: "Check that the broker runs and the sink's url names its host and port.",
      context,
    });
  if (code === "ENOTFOUND" || code === "EAI_AGAIN")
    return new BioError("SINK_UNAVAILABLE", `The MQTT broker's host ${where} is not found in DNS.`, {
      hint: "Check the host name in the sink's url.",
      context,
    });
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return new BioError("SINK_AUTH", `The MQTT broker ${where} presented a certificate for another name: ${text}.`, {
      hint: "Connect by the name its certificate holds, or set tls.serverName to that name.",
      context,
    });
  if (typeof code === "string" && TLS_TRUST.has(code))
    return new BioError(
      "SINK_AUTH",
      `The MQTT broker ${where} presented a certificate this sink does not trust (${code}).`,
      {
        hint: "Put the CA that signed the broker's certificate in tls.ca (PEM).",
        context,
      },
    );
  if (typeof code === "string" && /CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA/.test(code))
    return new BioError(
      "SINK_AUTH",
      `The MQTT broker ${where} did not accept this client's certificate (${reason ?? code}).`,
      {
        hint: "The broker's listener wants a client certificate its CA signed: set tls.cert and tls.key.",
        context,
      },
    );
  if (typeof code === "string" && /^ERR_SSL|^ERR_TLS|EPROTO/.test(code))
    return new BioError("SINK_PROTOCOL", `The TLS handshake with the MQTT broker ${where} failed: ${reason ?? text}.`, {
      hint: "Check that the url's scheme matches the listener (mqtts:// for TLS, mqtt:// for plain) and, if the broker wants a client certificate, tls.cert and tls.key.",
      context,
    });
  return new BioError("SINK_UNAVAILABLE", `The connection to the MQTT broker ${where} failed: ${text}.`, {
    hint: "Check the network between this host and the broker, and that the url's scheme matches the listener (mqtts:// for TLS).",
    context,
  });
}

/** What one PUBACK refusal means for its punch. */
export type PubackVerdict =
  /** Its own topic or payload is refused: sending it again cannot help; it goes to quarantine. */
  | { readonly kind: "permanent"; readonly reason: string }
  /** The broker asks to slow down: retried after a pause. */
  | { readonly kind: "slow-down"; readonly error: BioError }
  /** Refused for a reason the operator or time can fix (access rules, the broker's trouble): retried with backoff. */
  | { readonly kind: "transient"; readonly error: BioError };

/**
 * A PUBACK reason code of 0x80 or more: the broker did NOT take the message (MQTT 5 only; a 3.1.1 broker acks even a
 * publish its access rules drop, which no client can tell).
 */
export function pubackVerdict(code: number, topic: string, where: string): PubackVerdict {
  const hex = `0x${code.toString(16).padStart(2, "0")}`;
  const context = { reasonCode: code };
  switch (code) {
    case 0x87:
      // Access rules are configuration: quarantining every punch for them would bury the whole stream.
      return {
        kind: "transient",
        error: new BioError(
          "SINK_AUTH",
          `The MQTT broker ${where} does not let this client publish to "${topic}" (${hex}).`,
          {
            hint: "Allow this user or client id to publish there in the broker's access rules (ACL), or change the sink's topic.",
            context,
          },
        ),
      };
    case 0x90:
      return { kind: "permanent", reason: `the broker ${where} refused topic "${topic}" as invalid (${hex})` };
    case 0x99:
      return { kind: "permanent", reason: `the broker ${where} refused the payload's format (${hex})` };
    case 0x95:
      return { kind: "permanent", reason: `the broker ${where} found the message too large (${hex})` };
    case 0x97:
      return {
        kind: "slow-down",
        error: new BioError(
          "SINK_UNAVAILABLE",
          `The MQTT broker ${where} says this client's quota is exceeded (${hex}).`,
          {
            hint: "Raise the client's quota on the broker, or lower the sink's batchSize; the sink slows down and retries.",
            context,
          },
        ),
      };
    default:
      return {
        kind: "transient",
        error: new BioError(
          "SINK_REJECTED",
          `The MQTT broker ${where} did not take a publish to "${topic}" (${hex}).`,
          {
            hint: "See the broker's log for why; the punches stay in the outbox and are sent again.",
            context,
          },
        ),
      };
  }
}
