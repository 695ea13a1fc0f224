import assert from "node:assert/strict";
import { test } from "node:test";
import { fakeStatus } from "../../test/helpers/fake-status.ts";
import { attention } from "./attention.ts";

function configFixFor(code: string, message: string, version: number | null = 3): string | undefined {
  const base = fakeStatus(0);
  const s = { ...base, config: { ...base.config, version, lastError: { code, message } } };
  return attention(s, new Map()).find((a) => a.subject === "config")?.fix;
}

test("config advice follows the cause: only a config that does not validate points at the config", () => {
  const unreachable: [string, string][] = [
    ["CLOUD_UNAVAILABLE", "The cloud failed to serve the config: 502 bad gateway."],
    ["CLOUD_UNAVAILABLE", "Cannot reach the cloud at https://cloud.example (ECONNREFUSED)."],
    ["TIMEOUT", "timed out"],
    ["CLOUD_REDIRECT", "…a redirect to https://portal.example; redirects are never followed."],
    ["CLOUD_UNAUTHENTICATED", "The answer … does not carry the cloud's response MAC."],
  ];
  for (const [code, message] of unreachable) {
    const fix = configFixFor(code, message) ?? "";
    assert.match(fix, /^Version 3 keeps running\. The cloud could not be reached.*retried by itself/, code);
    assert.doesNotMatch(fix, /Fix the config/, code);
    assert.match(configFixFor(code, message, null) ?? "", /retried by itself/, `${code}, no config`);
  }
  assert.match(configFixFor("CONFIG_INVALID", "Config version 4 is invalid: …") ?? "", /Fix the config in the cloud/);
  assert.match(configFixFor("CONFIG_DECRYPT", "version 4 failed authentication") ?? "", /sealed for another node/);
  assert.match(configFixFor("CONFIG_STALE", "offered config version 2") ?? "", /as a new version/);
  assert.match(configFixFor("CLOUD_AUTH", "refused this node's signature") ?? "", /clock/);
  assert.match(configFixFor("CONFIG_FETCH", "The cloud holds no config", null) ?? "", /^Publish a config/);
});
