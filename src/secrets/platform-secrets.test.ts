import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { FakeWindows } from "../../test/helpers/fake-windows.ts";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { execTool } from "../service/exec.ts";
import { APP_ENTROPY, DpapiKeyProtector, FakeDpapi } from "./dpapi.ts";
import { EnvelopeSecretStore } from "./envelope-secret-store.ts";
import { RegistryEnvelopeStorage } from "./envelope-storage.ts";
import {
  parseRegQuery,
  REG_EXE_MAX_BYTES,
  RegExeRegistry,
  regArgs,
  secureKeyScript,
  secureRegistryKey,
} from "./registry.ts";
import { CREDENTIAL_NAME, SystemdCredsProtector } from "./systemd-creds-protector.ts";

const fixture = (name: string) => readFile(new URL(`./fixtures/${name}`, import.meta.url), "utf8");
const KEY = "HKLM\\SOFTWARE\\CamsBioApi";

describe("reg.exe", () => {
  test("argument builder: 64-bit view, REG_BINARY as upper-case hex, no prompt", () => {
    assert.deepEqual(regArgs.add(KEY, "Secrets", Buffer.from([0x7b, 0x0a, 0xff])), [
      "add",
      KEY,
      "/v",
      "Secrets",
      "/t",
      "REG_BINARY",
      "/d",
      "7B0AFF",
      "/f",
      "/reg:64",
    ]);
    assert.deepEqual(regArgs.query(KEY, "Secrets"), ["query", KEY, "/v", "Secrets", "/reg:64"]);
    assert.deepEqual(regArgs.deleteValue(KEY, "Secrets"), ["delete", KEY, "/v", "Secrets", "/f", "/reg:64"]);
  });

  test("output parser against fixtures: binary, string, empty, other names", async () => {
    assert.deepEqual(parseRegQuery(await fixture("reg-query-binary.txt"), "Secrets"), {
      type: "REG_BINARY",
      data: "7B2276223A317D",
    });
    assert.deepEqual(parseRegQuery(await fixture("reg-query-string.txt"), "secrets"), {
      type: "REG_SZ",
      data: "hello world",
    });
    assert.deepEqual(parseRegQuery(await fixture("reg-query-empty.txt"), "Empty"), { type: "REG_BINARY", data: "" });
    assert.equal(parseRegQuery(await fixture("reg-query-binary.txt"), "Other"), undefined);
  });

  test("missing value is undefined; access denied names elevation; wrong type and oversize are refused", async () => {
    const win = new FakeWindows();
    const reg = new RegExeRegistry(win.exec);
    assert.equal(await reg.getBinary(KEY, "Secrets"), undefined);
    await reg.setBinary(KEY, "Secrets", Buffer.from('{"v":1}'));
    assert.equal((await reg.getBinary(KEY, "Secrets"))?.toString(), '{"v":1}');
    win.values.set(`${KEY.toUpperCase()}\\SZ`, { type: "REG_SZ", data: "x" });
    await assert.rejects(reg.getBinary(KEY, "SZ"), { code: "SECRET_CORRUPT", message: /expected REG_BINARY/ });
    await assert.rejects(reg.setBinary(KEY, "Big", Buffer.alloc(REG_EXE_MAX_BYTES + 1)), /too large for reg\.exe/);
    win.denied.add(KEY);
    await assert.rejects(reg.getBinary(KEY, "Secrets"), { code: "SECRET_ACCESS", message: /Run as administrator/ });
    await assert.rejects(reg.setBinary(KEY, "Secrets", Buffer.from("x")), { code: "SECRET_ACCESS" });
  });

  test("the ACL script admits only SYSTEM and Administrators by SID, inheritance off", () => {
    const script = secureKeyScript(KEY);
    assert.match(script, /\$path = 'HKLM:\\SOFTWARE\\CamsBioApi'/);
    assert.match(script, /SetAccessRuleProtection\(\$true, \$false\)/);
    assert.match(script, /'S-1-5-18', 'S-1-5-32-544'/);
    assert.doesNotMatch(script, /Users|Everyone|S-1-1-0|S-1-5-32-545/);
  });
});

describe("Windows secret store (registry + DPAPI) on fakes", () => {
  const SECRET = "node-secret-that-must-never-appear";

  function store(win: FakeWindows, dpapi = new FakeDpapi()) {
    return new EnvelopeSecretStore(
      new RegistryEnvelopeStorage(new RegExeRegistry(win.exec), KEY, "Secrets", () => secureRegistryKey(win.exec, KEY)),
      new DpapiKeyProtector(dpapi),
    );
  }

  test("the key is secured once before the first write; argv and the registry hold only ciphertext", async () => {
    const win = new FakeWindows();
    const s = store(win);
    await s.set("enrollment", Buffer.from(SECRET));
    await s.set("other", Buffer.from("x"));
    assert.deepEqual([...win.securedKeys], [KEY]);
    assert.equal(win.calls.filter((c) => c.file === "powershell.exe").length, 1);
    const everything = JSON.stringify(win.calls) + JSON.stringify([...win.values.values()]);
    for (const spelling of [SECRET, Buffer.from(SECRET).toString("hex"), Buffer.from(SECRET).toString("base64")])
      assert.equal(everything.toUpperCase().includes(spelling.toUpperCase()), false, spelling);
    assert.equal((await s.get("enrollment"))?.toString(), SECRET);
    const doc = JSON.parse(Buffer.from(win.values.get(`${KEY.toUpperCase()}\\SECRETS`)?.data ?? "", "hex").toString());
    assert.equal(doc.protector, "dpapi-machine");
  });

  test("a registry value restored on another machine does not open (DPAPI is machine-bound)", async () => {
    const win = new FakeWindows();
    await store(win).set("enrollment", Buffer.from(SECRET));
    await assert.rejects(store(win, new FakeDpapi()).get("enrollment"), {
      code: "SECRET_CORRUPT",
      message: /DPAPI could not unwrap.*enroll here again/,
    });
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
