import assert from "node:assert/strict";
import { chmod, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { execTool } from "../platform/exec.ts";
import { KoffiDpapi } from "../platform/windows/koffi-dpapi.ts";
import { KoffiRegistryApi } from "../platform/windows/koffi-registry-api.ts";
import { MemoryRegistryApi } from "../platform/windows/memory-registry-api.ts";
import { DpapiKeyProtector, FakeDpapi } from "./dpapi-key-protector.ts";
import { EnvelopeSecretStore } from "./envelope-secret-store.ts";
import { RegistryEnvelopeStorage } from "./envelope-storage.ts";
import { KeyFileProtector, MemoryKeyProtector } from "./key-file-protector.ts";
import { MemorySecretStore } from "./memory-secret-store.ts";
import { Win32Registry } from "./registry.ts";
import type { SecretStore } from "./secret-store.ts";
import { SystemdCredsProtector } from "./systemd-creds-protector.ts";

const hasSystemdCreds = (await execTool("systemd-creds", ["--version"]).catch(() => ({ code: -1 }))).code === 0;

/** systemd-creds with its host key in the test's temp dir (SYSTEMD_CREDENTIAL_SECRET), so the machine's is untouched. */
function credsEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, SYSTEMD_CREDENTIAL_SECRET: join(dir, "host.secret") };
}

/** Windows: the same store over the real Win32 calls when on Windows, else over the in-memory registry and DPAPI. */
function windowsStore(dir: string, real = process.platform === "win32"): SecretStore {
  const key = `HKLM\\SOFTWARE\\CamsBioApiTest\\${dir.replace(/[^A-Za-z0-9]/g, "").slice(-12)}`;
  return new EnvelopeSecretStore(
    new RegistryEnvelopeStorage(
      new Win32Registry(real ? new KoffiRegistryApi() : new MemoryRegistryApi()),
      key,
      "Secrets",
    ),
    new DpapiKeyProtector(real ? new KoffiDpapi() : new FakeDpapi()),
    { keyGeneration: 2 },
  );
}

const backends: Record<string, (dir: string) => SecretStore> = {
  memory: () => new MemorySecretStore(),
  "envelope+key-file": (dir) =>
    new EnvelopeSecretStore(join(dir, "secrets.json"), new KeyFileProtector(join(dir, "master.key"))),
  "envelope+memory": (dir) => new EnvelopeSecretStore(join(dir, "secrets.json"), new MemoryKeyProtector()),
  [process.platform === "win32" ? "registry+dpapi (Windows)" : "registry+dpapi (in-memory registry, fake DPAPI)"]: (
    dir,
  ) => windowsStore(dir),
  ...(hasSystemdCreds
    ? {
        "envelope+systemd-creds": (dir: string) =>
          new EnvelopeSecretStore(
            join(dir, "secrets.json"),
            new SystemdCredsProtector({
              credentialPath: join(dir, "credstore", "kek"),
              credentialsDirectory: undefined,
              env: credsEnv(dir),
            }),
          ),
      }
    : {}),
};

for (const [name, make] of Object.entries(backends)) {
  describe(`SecretStore contract: ${name}`, () => {
    test("set, get, overwrite, delete", async () => {
      await using dir = await tempDir();
      const store = make(dir.path);
      assert.equal(await store.get("missing"), undefined);
      await store.set("a", Buffer.from("one"));
      await store.set("b", Buffer.from("two"));
      assert.equal((await store.get("a"))?.toString(), "one");
      await store.set("a", Buffer.from("uno"));
      assert.equal((await store.get("a"))?.toString(), "uno");
      await store.delete("a");
      assert.equal(await store.get("a"), undefined);
      assert.equal((await store.get("b"))?.toString(), "two");
    });

    // The memory backend has no data key, so it must not pretend to rotate one; the envelope backends must.
    test("rotation keeps every value under a new data key, where there is one", async () => {
      await using dir = await tempDir();
      const store = make(dir.path);
      if (!(store instanceof EnvelopeSecretStore)) {
        assert.equal("rotate" in store, false, "a backend without a data key offers no rotation");
        return;
      }
      await store.set("a", Buffer.from("alpha"));
      await store.rotate();
      await store.rotate();
      assert.equal((await store.get("a"))?.toString(), "alpha");
    });

    test("concurrent writes keep every entry", async () => {
      await using dir = await tempDir();
      const store = make(dir.path);
      await Promise.all(Array.from({ length: 10 }, (_, i) => store.set(`k${i}`, Buffer.from(`v${i}`))));
      for (let i = 0; i < 10; i++) assert.equal((await store.get(`k${i}`))?.toString(), `v${i}`);
    });
  });
}

describe("envelope file", () => {
  const SECRET = "very-secret-node-credential-value";

  test("holds no plaintext; the key file is 0600", async () => {
    await using dir = await tempDir();
    const store = backends["envelope+key-file"]?.(dir.path) as SecretStore;
    await store.set("enrollment", Buffer.from(SECRET));
    const text = await readFile(join(dir.path, "secrets.json"), "utf8");
    assert.equal(text.includes(SECRET), false);
    assert.equal(text.includes(Buffer.from(SECRET).toString("base64")), false);
    assert.equal((await stat(join(dir.path, "master.key"))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir.path, "secrets.json"))).mode & 0o777, 0o600);
  });

  test("a tampered entry fails authentication with a clear error", async () => {
    await using dir = await tempDir();
    const store = backends["envelope+key-file"]?.(dir.path) as SecretStore;
    await store.set("enrollment", Buffer.from(SECRET));
    const path = join(dir.path, "secrets.json");
    const file = JSON.parse(await readFile(path, "utf8"));
    const blob = Buffer.from(file.entries.enrollment, "base64");
    blob[blob.length - 20] = (blob[blob.length - 20] ?? 0) ^ 1;
    file.entries.enrollment = blob.toString("base64");
    await writeFile(path, JSON.stringify(file));
    await assert.rejects(store.get("enrollment"), { code: "SECRET_CORRUPT", message: /altered or the key is wrong/ });
  });

  test("an entry moved under another name fails (the name is associated data)", async () => {
    await using dir = await tempDir();
    const store = backends["envelope+key-file"]?.(dir.path) as SecretStore;
    await store.set("a", Buffer.from("alpha"));
    const path = join(dir.path, "secrets.json");
    const file = JSON.parse(await readFile(path, "utf8"));
    file.entries.b = file.entries.a;
    await writeFile(path, JSON.stringify(file));
    await assert.rejects(store.get("b"), { code: "SECRET_CORRUPT" });
  });

  test("a wrong key-encryption key is refused", async () => {
    await using dir = await tempDir();
    const path = join(dir.path, "secrets.json");
    await new EnvelopeSecretStore(path, new MemoryKeyProtector()).set("a", Buffer.from("alpha"));
    await assert.rejects(new EnvelopeSecretStore(path, new MemoryKeyProtector()).get("a"), { code: "SECRET_CORRUPT" });
  });

  test("a key file readable by others is refused, naming the fix", async () => {
    await using dir = await tempDir();
    const store = backends["envelope+key-file"]?.(dir.path) as SecretStore;
    await store.set("a", Buffer.from("alpha"));
    await chmod(join(dir.path, "master.key"), 0o644);
    await assert.rejects(store.get("a"), /chmod 600/);
  });

  test("rotation re-encrypts every entry under a new data key", async () => {
    await using dir = await tempDir();
    const path = join(dir.path, "secrets.json");
    const store = new EnvelopeSecretStore(path, new KeyFileProtector(join(dir.path, "master.key")));
    await store.set("a", Buffer.from("alpha"));
    await store.set("b", Buffer.from("beta"));
    const before = JSON.parse(await readFile(path, "utf8"));
    await store.rotate();
    const after = JSON.parse(await readFile(path, "utf8"));
    assert.notEqual(after.wrappedKey, before.wrappedKey);
    assert.notEqual(after.entries.a, before.entries.a);
    assert.equal((await store.get("a"))?.toString(), "alpha");
    assert.equal((await store.get("b"))?.toString(), "beta");
  });
});
