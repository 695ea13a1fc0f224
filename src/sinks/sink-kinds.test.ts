import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { type SinkConfig, sinkSchema } from "../config/sink-schema.ts";
import { SINK_KINDS, sinkSecrets } from "./sink-kinds.ts";

/**
 * One config per kind with every optional field set, each secret-looking value unique. Typed by kind, so a kind added
 * to the schema without a sample here does not compile.
 */
const SAMPLES: { readonly [K in SinkConfig["kind"]]: Record<string, unknown> } = {
  "cams-cloud": { id: "cloud", kind: "cams-cloud" },
  "cams-callback": {
    id: "cb",
    kind: "cams-callback",
    url: "https://hr.example.com/cams",
    authToken: "S-callback-token",
    headers: { "x-api-key": "S-callback-header" },
  },
  "adms-relay": { id: "adms", kind: "adms-relay", url: "http://biotime.example.com:8081" },
  erpnext: {
    id: "erp",
    kind: "erpnext",
    url: "https://erp.example.com",
    apiKey: "S-erp-key",
    apiSecret: "S-erp-secret",
  },
  webhook: {
    id: "hook",
    kind: "webhook",
    url: "https://hooks.example.com/in",
    secret: "S-whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    headers: { authorization: "S-hook-header" },
  },
  mqtt: {
    id: "broker",
    kind: "mqtt",
    url: "mqtts://S-url-user:S-url-password@emqx.example.com:8883",
    username: "fleet",
    password: "S-mqtt-password",
    tls: { key: "S-mqtt-client-key", cert: "-----BEGIN CERTIFICATE-----" },
  },
};

/** The paths whose description says the value is a secret: `secret()` fields and extra-header values. */
function secretPaths(schema: Record<string, unknown>, path: string[] = []): string[][] {
  const out: string[][] = [];
  const description = typeof schema.description === "string" ? schema.description : "";
  if (/Redacted everywhere|treated as secrets/.test(description)) out.push(path);
  const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  for (const [name, sub] of Object.entries(properties)) out.push(...secretPaths(sub, [...path, name]));
  for (const branch of [...((schema.anyOf ?? []) as Record<string, unknown>[])]) out.push(...secretPaths(branch, path));
  return out;
}

function valuesAt(value: unknown, path: readonly string[]): string[] {
  if (path.length === 0) {
    if (typeof value === "string") return [value];
    if (value && typeof value === "object") return Object.values(value).filter((v) => typeof v === "string");
    return [];
  }
  if (!value || typeof value !== "object") return [];
  return valuesAt((value as Record<string, unknown>)[path[0] as string], path.slice(1));
}

describe("sink kinds", () => {
  const branches = (z.toJSONSchema(sinkSchema, { io: "input" }) as { oneOf: Record<string, unknown>[] }).oneOf;

  it("every kind in the config schema has an entry, and the sample of each is a valid config", () => {
    const kinds = branches.map(
      (b) => ((b.properties as Record<string, { const: string }>).kind as { const: string }).const,
    );
    assert.deepEqual([...kinds].sort(), Object.keys(SINK_KINDS).sort());
    for (const sample of Object.values(SAMPLES)) sinkSchema.parse(sample);
  });

  it("every value the schema calls secret is listed by sinkSecrets, so redaction covers it", () => {
    let checked = 0;
    for (const branch of branches) {
      const kind = ((branch.properties as Record<string, { const: string }>).kind as { const: string }).const;
      const config = sinkSchema.parse(SAMPLES[kind as SinkConfig["kind"]]);
      const listed = sinkSecrets([config]);
      for (const path of secretPaths(branch)) {
        const values = valuesAt(config, path);
        assert.ok(values.length > 0, `the ${kind} sample must set ${path.join(".")} so its redaction is tested`);
        for (const value of values) {
          assert.ok(listed.includes(value), `${kind}: ${path.join(".")} is a secret but sinkSecrets leaves it out`);
          checked++;
        }
      }
    }
    assert.ok(checked >= 7, `only ${checked} secret values were found in the schema`);
  });

  it("a password in an MQTT URL's user part is a secret too", () => {
    const config = sinkSchema.parse(SAMPLES.mqtt);
    assert.ok(sinkSecrets([config]).includes("S-url-password"));
  });

  it("no listed secret is empty (an empty string would redact every text)", () => {
    const configs = Object.values(SAMPLES).map((s) => sinkSchema.parse(s));
    assert.ok(sinkSecrets(configs).every((s) => s.length > 0));
    const bare = sinkSchema.parse({ id: "cb", kind: "cams-callback", url: "https://hr.example.com/cams" });
    assert.deepEqual(sinkSecrets([bare]), []);
  });
});
