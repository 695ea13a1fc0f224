import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { execTool } from "../platform/exec.ts";
import { MemoryRegistryApi } from "../platform/windows/memory-registry-api.ts";
import { SECRETS_KEY_SDDL } from "../platform/windows/registry-api.ts";
import { secureKeyScript } from "../service/windows/secure-key-script.ts";
import { APP_ENTROPY, DpapiKeyProtector, FakeDpapi } from "./dpapi-key-protector.ts";
import { open } from "./envelope.ts";
import { EnvelopeSecretStore } from "./envelope-secret-store.ts";
import { RegistryEnvelopeStorage } from "./envelope-storage.ts";
import { WINDOWS_KEY_GENERATION } from "./open-secret-store.ts";
import { Win32Registry } from "./registry.ts";
import { CREDENTIAL_NAME, SystemdCredsProtector } from "./systemd-creds-protector.ts";

const KEY = "HKLM\\SOFTWARE\\CamsBioApi";

describe("installer ACL script", () => {
  test("admits only SYSTEM and Administrators by SID, inheritance off", () => {
    const script = secureKeyScript(KEY);
    assert.match(script, /\$path = 'HKLM:\\SOFTWARE\\CamsBioApi'/);
    assert.match(script, /SetAccessRuleProtection\(\$true, \$false\)/);
    assert.match(script, /'S-1-5-18', 'S-1-5-32-544'/);
    assert.doesNotMatch(script, /Users|Everyone|S-1-1-0|S-1-5-32-545/);
  });
});

describe("Windows secret store (registry + DPAPI) on fakes", () => {
  const SECRET = "node-secret-that-must-never-appear";

  function store(
    api: MemoryRegistryApi,
    dpapi = new FakeDpapi(),
    keyGeneration: number | null = WINDOWS_KEY_GENERATION,
  ) {
    return new EnvelopeSecretStore(
      new RegistryEnvelopeStorage(new Win32Registry(api), KEY, "Secrets"),
      new DpapiKeyProtector(dpapi),
      keyGeneration === null ? {} : { keyGeneration },
    );
  }

  const stored = (api: MemoryRegistryApi) => {
    return api.query("SOFTWARE\\CamsBioApi", "Secrets").then((r) => {
      assert.ok(r.ok);
      return JSON.parse(r.value.data.toString("utf8"));
    });
  };

  test("the key gets the administrators-only SDDL once, before the first write; the value holds only ciphertext", async () => {
    const api = new MemoryRegistryApi();
    const s = store(api);
    await s.set("enrollment", Buffer.from(SECRET));
    await s.set("other", Buffer.from("x"));
    assert.equal(api.calls.filter((c) => c.op === "createKey").length, 1);
    assert.equal(api.sddlOf("SOFTWARE\\CamsBioApi"), SECRETS_KEY_SDDL);
    const r = await api.query("SOFTWARE\\CamsBioApi", "Secrets");
    assert.ok(r.ok);
    const raw = r.value.data.toString("latin1");
    for (const spelling of [SECRET, Buffer.from(SECRET).toString("hex"), Buffer.from(SECRET).toString("base64")])
      assert.equal(raw.toUpperCase().includes(spelling.toUpperCase()), false, spelling);
    assert.equal((await s.get("enrollment"))?.toString(), SECRET);
    const doc = await stored(api);
    assert.equal(doc.protector, "dpapi-machine");
    assert.equal(doc.keyGeneration, WINDOWS_KEY_GENERATION, "a new envelope is born at the current generation");
  });

  test("a registry value restored on another machine does not open (DPAPI is machine-bound)", async () => {
    const api = new MemoryRegistryApi();
    await store(api).set("enrollment", Buffer.from(SECRET));
    await assert.rejects(store(api, new FakeDpapi()).get("enrollment"), {
      code: "SECRET_CORRUPT",
      message: /DPAPI could not unwrap.*enroll here again/,
    });
  });

  test("first start after the upgrade: a generation-1 envelope gets a fresh data key; the old one opens nothing new", async () => {
    const api = new MemoryRegistryApi();
    const dpapi = new FakeDpapi();
    // null: no required generation, as in a version before the fix. What it wrote is what process-creation auditing
    // recorded from reg.exe's command line.
    await store(api, dpapi, null).set("enrollment", Buffer.from(SECRET));
    await store(api, dpapi, null).set("other", Buffer.from("x"));
    const captured = await stored(api);
    assert.equal(captured.keyGeneration, undefined);

    const upgraded = store(api, dpapi);
    assert.equal((await upgraded.get("enrollment"))?.toString(), SECRET, "secrets still read after the rotation");
    assert.equal((await upgraded.get("other"))?.toString(), "x");
    const now = await stored(api);
    assert.equal(now.keyGeneration, WINDOWS_KEY_GENERATION);
    assert.notEqual(now.wrappedKey, captured.wrappedKey);
    assert.notEqual(now.entries.enrollment, captured.entries.enrollment);

    // Whoever holds the captured envelope can unwrap its data key (machine-scope DPAPI), but that key opens none of
    // today's entries.
    const oldKey = await dpapi.unprotect(Buffer.from(captured.wrappedKey, "base64"), APP_ENTROPY);
    for (const name of ["enrollment", "other"]) {
      assert.throws(() => open(oldKey, Buffer.from(now.entries[name], "base64"), `cams-bioapi/secret\n${name}`, name), {
        code: "SECRET_CORRUPT",
      });
    }

    // Once only: later starts (new store instances) leave the data key alone.
    await store(api, dpapi).get("enrollment");
    await store(api, dpapi).set("third", Buffer.from("3"));
    assert.equal((await stored(api)).wrappedKey, now.wrappedKey);
  });

  test("an upgrade that cannot write (not elevated) fails clearly and is tried again on the next call", async () => {
    const api = new MemoryRegistryApi();
    const dpapi = new FakeDpapi();
    await store(api, dpapi, null).set("enrollment", Buffer.from(SECRET));
    const upgraded = store(api, dpapi);
    api.failNext("setBinary", 5);
    await assert.rejects(upgraded.get("enrollment"), { code: "SECRET_ACCESS", message: /Run as administrator/ });
    assert.equal((await stored(api)).keyGeneration, undefined);
    assert.equal((await upgraded.get("enrollment"))?.toString(), SECRET);
    assert.equal((await stored(api)).keyGeneration, WINDOWS_KEY_GENERATION);
  });

  test("DPAPI port contract: round trip, entropy bound, tamper evident", async () => {
    const dpapi = new FakeDpapi();
    const blob = await dpapi.protect(Buffer.from("k"), APP_ENTROPY);
    assert.equal((await dpapi.unprotect(blob, APP_ENTROPY)).toString(), "k");
    await assert.rejects(dpapi.unprotect(blob, Buffer.from("other app")));
    blob[blob.length - 1] = (blob[blob.length - 1] ?? 0) ^ 1;
    await assert.rejects(dpapi.unprotect(blob, APP_ENTROPY));
  });
});

const hasSystemdCreds = (await execTool("systemd-creds", ["--version"]).catch(() => ({ code: -1 }))).code === 0;

describe("systemd-creds protector", { skip: hasSystemdCreds ? false : "systemd-creds not installed" }, () => {
  test("the key credential is bound to the host key; the service reads it from $CREDENTIALS_DIRECTORY", async () => {
    await using dir = await tempDir();
    const env = { ...process.env, SYSTEMD_CREDENTIAL_SECRET: join(dir.path, "host.secret") };
    const credentialPath = join(dir.path, "credstore", CREDENTIAL_NAME);
    const secrets = join(dir.path, "secrets.json");
    const p = new SystemdCredsProtector({ credentialPath, credentialsDirectory: undefined, env });
    await new EnvelopeSecretStore(secrets, p).set("a", Buffer.from("alpha"));
    const credential = await readFile(credentialPath);
    assert.ok(credential.length > 32, "an encrypted credential, not the raw key");

    // What systemd does at unit start (LoadCredentialEncrypted=): decrypt into the unit's credentials directory.
    const loaded = join(dir.path, "run-credentials");
    await mkdir(loaded);
    const dec = await execTool("systemd-creds", ["decrypt", `--name=${CREDENTIAL_NAME}`, credentialPath, "-"], {
      env,
      encoding: "latin1",
    });
    assert.equal(dec.code, 0, dec.stderr);
    await writeFile(join(loaded, CREDENTIAL_NAME), Buffer.from(dec.stdout, "latin1"), { mode: 0o400 });
    const asService = new SystemdCredsProtector({
      credentialPath: join(dir.path, "nowhere"),
      credentialsDirectory: loaded,
      env,
    });
    assert.equal((await new EnvelopeSecretStore(secrets, asService).get("a"))?.toString(), "alpha");

    // Another host key (another machine, or a reinstalled one) cannot decrypt the credential.
    const otherHost = new SystemdCredsProtector({
      credentialPath,
      credentialsDirectory: undefined,
      env: { ...process.env, SYSTEMD_CREDENTIAL_SECRET: join(dir.path, "other.secret") },
    });
    await assert.rejects(new EnvelopeSecretStore(secrets, otherHost).get("a"), {
      code: "SECRET_ACCESS",
      message: /could not decrypt/,
    });
  });
});
