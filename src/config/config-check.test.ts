import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import type { CloudResponse } from "../link/cloud-client.ts";
import { deriveNodeKeys } from "../link/node-keys.ts";
import { seal } from "../secrets/envelope.ts";
import { Store } from "../store/store.ts";
import { checkCachedConfig, checkCloudConfig } from "./config-check.ts";
import { configAssociatedData, sealCache } from "./config-envelope.ts";
import { openCachedConfig } from "./open-cached-config.ts";

const NODE = "0b9e5f1e-3a8c-4b7d-9e2f-1c2d3e4f5a6b";
const keys = deriveNodeKeys(Buffer.alloc(32, 7).toString("base64url"));
const other = deriveNodeKeys(Buffer.alloc(32, 8).toString("base64url"));
const CONFIG = { schemaVersion: 1, sources: [] };

test("openCachedConfig: none, opened with its parse, and unreadable under another node's key", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  try {
    assert.deepEqual(openCachedConfig(store, keys.local, NODE), { state: "none" });
    assert.deepEqual(checkCachedConfig(store, keys.local, NODE), { findings: [] });

    store.saveConfig({ version: 3, ...sealCache(keys.local, NODE, 3, CONFIG) });
    const opened = openCachedConfig(store, keys.local, NODE);
    assert.equal(opened.state, "opened");
    if (opened.state !== "opened") return;
    assert.equal(opened.version, 3);
    assert.deepEqual(opened.raw, CONFIG);
    assert.equal(opened.parsed.ok, true);
    const cached = checkCachedConfig(store, keys.local, NODE);
    assert.deepEqual(cached.findings, [
      { subject: "node", check: "cached config", status: "ok", detail: "version 3 decrypts" },
    ]);
    assert.equal(cached.found?.from, "cached version 3");

    const unreadable = openCachedConfig(store, other.local, NODE);
    assert.equal(unreadable.state, "unreadable");
    const warned = checkCachedConfig(store, other.local, NODE);
    assert.equal(warned.findings[0]?.status, "warn");
    assert.match(warned.findings[0]?.fix ?? "", /fetches a fresh copy/);
    assert.equal(warned.found, undefined);

    // An invalid cached config says nothing here: the cloud's copy is checked next, and it is what runs.
    store.saveConfig({ version: 4, ...sealCache(keys.local, NODE, 4, { schemaVersion: 1, sources: "no" }) });
    assert.deepEqual(checkCachedConfig(store, keys.local, NODE), { findings: [] });
  } finally {
    store.close();
  }
});

function envelopeResponse(status: number, version: number, config: unknown, key = keys.config): CloudResponse {
  const sealed = seal(key, Buffer.from(JSON.stringify(config)), configAssociatedData(NODE, version));
  const body = {
    nodeId: NODE,
    version,
    alg: "AES-256-GCM",
    iv: sealed.subarray(0, 12).toString("base64"),
    ciphertext: sealed.subarray(12).toString("base64"),
  };
  return { status, headers: new Headers(), body: Buffer.from(JSON.stringify(body)), authenticated: true };
}

test("checkCloudConfig: valid, invalid, sealed for another secret, and none held", () => {
  const target = { subject: "cloud http://c", configKey: keys.config, nodeId: NODE };
  const ok = checkCloudConfig(envelopeResponse(200, 2, CONFIG), target);
  assert.deepEqual(ok.findings, [
    { subject: "cloud http://c", check: "config", status: "ok", detail: "version 2 decrypts and is valid (0 sources)" },
  ]);
  assert.equal(ok.found?.from, "the cloud's version 2");

  const invalid = checkCloudConfig(envelopeResponse(200, 2, { schemaVersion: 1, sources: "no" }), target);
  assert.equal(invalid.findings[0]?.status, "fail");
  assert.match(invalid.findings[0]?.detail ?? "", /^Version 2 is invalid: /);
  assert.equal(invalid.found, undefined);

  const foreign = checkCloudConfig(envelopeResponse(200, 2, CONFIG, other.config), target);
  assert.match(foreign.findings[0]?.fix ?? "", /sealed for another node or secret/);

  const none = checkCloudConfig({ ...envelopeResponse(404, 1, {}), body: Buffer.from("{}") }, target);
  assert.equal(none.findings[0]?.detail, "The cloud holds no config for this node.");
  assert.equal(none.findings[0]?.fix, `Publish one: bioapi cloud config set ${NODE} FILE.`);
});
