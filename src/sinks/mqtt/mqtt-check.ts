import type { MqttSinkConfig } from "../../config/sink-schema.ts";
import type { Check, Finding } from "../../core/check.ts";
import { BioError, describeError } from "../../core/errors.ts";
import { connackError, transportError } from "./mqtt-errors.ts";
import { brokerAddress, clientOptions, mqttClientId } from "./mqtt-options.ts";

const CHECK_TIMEOUT_MS = 10_000;

/**
 * Connects and authenticates as the sink would, then disconnects: the CONNACK is the probe. Nothing is published or
 * subscribed. It uses its own client id (the sink's plus "-doctor") and a clean session that expires at once, so it
 * neither takes over a running connector's session (the broker would drop that connection) nor leaves one behind.
 */
/** sink-kinds.ts SinkCheck, by shape: importing it from there would make a circle. */
export const checkMqtt: Check<{ readonly config: MqttSinkConfig; readonly nodeId: string }> = async (
  { config, nodeId },
  signal,
) => {
  const broker = brokerAddress(config);
  const subject = `sink ${config.id} (mqtt)`;
  const version = config.protocolVersion === 5 ? "MQTT 5" : "MQTT 3.1.1";
  const out: Finding[] = [];
  if (!broker.secure && (config.password ?? broker.password)) {
    out.push({
      subject,
      check: "tls",
      status: "warn",
      detail: "The password is sent without TLS (mqtt:// or ws://).",
      fix: "Use the broker's TLS listener: an mqtts:// (or wss://) url, with tls.ca if its CA is not in the system store.",
    });
  }
  if (broker.secure && config.tls?.verify === false) {
    out.push({
      subject,
      check: "tls",
      status: "warn",
      detail: "tls.verify is false: any server can pose as the broker.",
      fix: "Put the broker's CA in tls.ca and remove verify: false.",
    });
  }
  if (!broker.secure && config.tls) {
    out.push({
      subject,
      check: "tls",
      status: "warn",
      detail: "The sink has a tls section but its url is not mqtts:// or wss://, so TLS is not used.",
      fix: "Use an mqtts:// (or wss://) url, or remove the tls section.",
    });
  }
  try {
    await probe(config, nodeId, signal);
    const user = config.username ?? broker.username;
    const as = user ? ` as user ${user}` : config.tls?.cert ? " with the client certificate" : " anonymously";
    out.push({
      subject,
      check: "connect",
      status: "ok",
      detail: `The broker ${broker.where} (${version}) accepted the connection${as}.`,
    });
  } catch (error) {
    if (signal.aborted) throw error;
    const { message } = describeError(error);
    const hint = error instanceof BioError ? error.hint : undefined;
    // A BioError's message ends with its hint; the finding shows the hint once, as the fix.
    const detail = hint && message.endsWith(hint) ? message.slice(0, -hint.length).trimEnd() : message;
    out.push({ subject, check: "connect", status: "fail", detail, ...(hint ? { fix: hint } : {}) });
  }
  return out;
};

async function probe(config: MqttSinkConfig, nodeId: string, signal: AbortSignal): Promise<void> {
  const { connect } = await import("mqtt");
  const broker = brokerAddress(config);
  const client = connect(
    clientOptions({
      config,
      clientId: `${mqttClientId(config, nodeId)}-doctor`,
      connectTimeoutMs: CHECK_TIMEOUT_MS,
      clean: true,
    }),
  );
  client.on("error", () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      let refusal: BioError | undefined;
      const timer = setTimeout(
        () =>
          reject(
            new BioError(
              "SINK_UNAVAILABLE",
              `The MQTT broker ${broker.where} did not accept the connection within ${CHECK_TIMEOUT_MS} ms.`,
              {
                hint: "Check that the url's scheme matches the listener (mqtts:// for a TLS port).",
              },
            ),
          ),
        CHECK_TIMEOUT_MS,
      );
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      client.on("error", (error) => {
        const code = (error as { code?: unknown }).code;
        refusal =
          typeof code === "number"
            ? connackError(code, config.protocolVersion, broker.where)
            : transportError(error, broker.where);
      });
      client.once("close", () => {
        done();
        reject(
          refusal ??
            new BioError(
              "SINK_UNAVAILABLE",
              `The MQTT broker ${broker.where} closed the connection before accepting it.`,
              {
                hint: "Check that the url's scheme matches the listener (mqtts:// for a TLS port, mqtt:// for a plain one).",
              },
            ),
        );
      });
      client.once("connect", () => {
        done();
        resolve();
      });
    });
  } finally {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        client.end(true);
        resolve();
      }, 2000);
      client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
