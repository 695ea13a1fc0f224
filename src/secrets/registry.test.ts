import assert from "node:assert/strict";
import childProcess from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { dirname, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { BioError } from "../core/errors.ts";
import { KoffiRegistryApi } from "../platform/windows/koffi-registry-api.ts";
import { MemoryRegistryApi } from "../platform/windows/memory-registry-api.ts";
import {
  queryInTwoCalls,
  type RawQuery,
  REG_TYPE,
  type RegistryApi,
  SECRETS_KEY_SDDL,
  WIN32_ERROR,
  type Win32Outcome,
} from "../platform/windows/registry-api.ts";
import { DpapiKeyProtector, FakeDpapi } from "./dpapi-key-protector.ts";
import { loadEnrollment, saveEnrollment } from "./enrollment.ts";
import { EnvelopeSecretStore } from "./envelope-secret-store.ts";
import { RegistryEnvelopeStorage } from "./envelope-storage.ts";
import { Win32Registry } from "./registry.ts";

const onWindows = process.platform === "win32";

function value<T>(outcome: Win32Outcome<T>): T {
  assert.ok(outcome.ok, `expected success, got Win32 error ${outcome.ok ? "" : outcome.error}`);
  return outcome.value;
}

function error(outcome: Win32Outcome<unknown>): number | undefined {
  return outcome.ok ? undefined : outcome.error;
}

/** The one contract both implementations keep; the koffi one runs it on Windows against the real HKLM. */
const implementations: Record<string, () => RegistryApi> = {
  "in-memory": () => new MemoryRegistryApi(),
  ...(onWindows ? { "koffi (advapi32)": () => new KoffiRegistryApi() } : {}),
};

for (const [name, make] of Object.entries(implementations)) {
  describe(`RegistryApi contract: ${name}`, () => {
    const path = () => `SOFTWARE\\CamsBioApiTest\\${randomBytes(6).toString("hex")}`;

    test("a missing key and a missing value are both ERROR_FILE_NOT_FOUND", async () => {
      const api = make();
      const key = path();
      assert.equal(error(await api.query(key, "Secrets")), WIN32_ERROR.FILE_NOT_FOUND);
      assert.equal(error(await api.setBinary(key, "Secrets", Buffer.from("x"))), WIN32_ERROR.FILE_NOT_FOUND);
      assert.equal(error(await api.deleteValue(key, "Secrets")), WIN32_ERROR.FILE_NOT_FOUND);
      assert.equal(value(await api.createKey(key, SECRETS_KEY_SDDL)), "created");
      assert.equal(value(await api.createKey(key, SECRETS_KEY_SDDL)), "opened");
      assert.equal(error(await api.query(key, "Secrets")), WIN32_ERROR.FILE_NOT_FOUND);
      assert.equal(error(await api.deleteValue(key, "Secrets")), WIN32_ERROR.FILE_NOT_FOUND);
    });

    test("REG_BINARY round trip: overwrite, grow, empty, 64 KiB, case-insensitive names, delete", async () => {
      const api = make();
      const key = path();
      value(await api.createKey(key, SECRETS_KEY_SDDL));
      value(await api.setBinary(key, "Secrets", Buffer.from('{"v":1}')));
      assert.deepEqual(value(await api.query(key, "Secrets")), { type: REG_TYPE.BINARY, data: Buffer.from('{"v":1}') });
      const big = randomBytes(64 * 1024);
      value(await api.setBinary(key, "Secrets", big));
      assert.deepEqual(value(await api.query(key, "secrets")).data, big);
      value(await api.setBinary(key, "Empty", Buffer.alloc(0)));
      assert.deepEqual(value(await api.query(key, "Empty")), { type: REG_TYPE.BINARY, data: Buffer.alloc(0) });
      value(await api.deleteValue(key, "SECRETS"));
      assert.equal(error(await api.query(key, "Secrets")), WIN32_ERROR.FILE_NOT_FOUND);
      assert.equal(error(await api.deleteValue(key, "Secrets")), WIN32_ERROR.FILE_NOT_FOUND);
    });
  });
}

describe("the in-memory registry plays a non-elevated caller", () => {
  test("a denied key answers ERROR_ACCESS_DENIED to every call; the access list given is recorded", async () => {
    const api = new MemoryRegistryApi();
    value(await api.createKey("SOFTWARE\\CamsBioApi", SECRETS_KEY_SDDL));
    assert.equal(api.sddlOf("software\\camsbioapi"), SECRETS_KEY_SDDL);
    api.denied.add("SOFTWARE\\CamsBioApi");
    assert.equal(error(await api.createKey("SOFTWARE\\CamsBioApi", SECRETS_KEY_SDDL)), WIN32_ERROR.ACCESS_DENIED);
    assert.equal(error(await api.setBinary("SOFTWARE\\CamsBioApi", "S", Buffer.from("x"))), WIN32_ERROR.ACCESS_DENIED);
    assert.equal(error(await api.query("SOFTWARE\\CamsBioApi", "S")), WIN32_ERROR.ACCESS_DENIED);
    assert.equal(error(await api.deleteValue("SOFTWARE\\CamsBioApi", "S")), WIN32_ERROR.ACCESS_DENIED);
  });

  test("the secrets key's SDDL: owner Administrators, SYSTEM and Administrators only, protected from inheritance", () => {
    assert.match(SECRETS_KEY_SDDL, /^O:BA/);
    assert.match(SECRETS_KEY_SDDL, /D:P\(/);
    const aces = SECRETS_KEY_SDDL.match(/\([^)]*\)/g) ?? [];
    assert.deepEqual(
      aces.map((a) => a.split(";").at(-1)?.replace(")", "")),
      ["SY", "BA"],
    );
    assert.ok(aces.every((a) => a.startsWith("(A;")));
  });
});

describe("RegQueryValueExW: size query, then read", () => {
  /** A value the raw call serves; `grow` makes it longer just before each read (another writer in between). */
  function raw(initial: number, grow: (read: number) => number): { call: RawQuery; calls: Array<number | null> } {
    let size = initial;
    let reads = 0;
    const calls: Array<number | null> = [];
    const call: RawQuery = (data, out) => {
      calls.push(data ? data.length : null);
      out.type = REG_TYPE.BINARY;
      if (!data) {
        out.size = size;
        return WIN32_ERROR.SUCCESS;
      }
      size += grow(reads++);
      out.size = size;
      if (data.length < size) return WIN32_ERROR.MORE_DATA;
      data.fill(7, 0, size);
      return WIN32_ERROR.SUCCESS;
    };
    return { call, calls };
  }

  test("asks the size first, then reads exactly that", () => {
    const r = raw(5, () => 0);
    assert.deepEqual(value(queryInTwoCalls(r.call)), { type: REG_TYPE.BINARY, data: Buffer.alloc(5, 7) });
    assert.deepEqual(r.calls, [null, 5]);
  });

  test("a value that grew between the calls is asked for again at its new size", () => {
    const r = raw(5, (read) => (read === 0 ? 3 : 0));
    assert.deepEqual(value(queryInTwoCalls(r.call)).data, Buffer.alloc(8, 7));
    assert.deepEqual(r.calls, [null, 5, 8]);
  });

  test("a value that keeps growing ends in ERROR_MORE_DATA after a bounded number of reads, not a hang", () => {
    const r = raw(5, () => 1);
    assert.equal(error(queryInTwoCalls(r.call, 3)), WIN32_ERROR.MORE_DATA);
    assert.equal(r.calls.length, 4);
  });

  test("an empty value needs no second call; a failing size query is returned as is", () => {
    const r = raw(0, () => 0);
    assert.deepEqual(value(queryInTwoCalls(r.call)).data, Buffer.alloc(0));
    assert.deepEqual(r.calls, [null]);
    assert.equal(error(queryInTwoCalls(() => WIN32_ERROR.ACCESS_DENIED)), WIN32_ERROR.ACCESS_DENIED);
  });
});

describe("Win32Registry: each call's error numbers become BioErrors", () => {
  const KEY = "HKLM\\SOFTWARE\\CamsBioApi";
  const calls = {
    secureKey: { op: "createKey", run: (r: Win32Registry) => r.secureKey(KEY), win32: "RegCreateKeyEx" },
    getBinary: { op: "query", run: (r: Win32Registry) => r.getBinary(KEY, "Secrets"), win32: "RegQueryValueEx" },
    setBinary: {
      op: "setBinary",
      run: (r: Win32Registry) => r.setBinary(KEY, "Secrets", Buffer.from("x")),
      win32: "RegSetValueEx",
    },
    deleteValue: {
      op: "deleteValue",
      run: (r: Win32Registry) => r.deleteValue(KEY, "Secrets"),
      win32: "RegDeleteValue",
    },
  } as const;

  async function withKey(): Promise<{ api: MemoryRegistryApi; registry: Win32Registry }> {
    const api = new MemoryRegistryApi();
    const registry = new Win32Registry(api);
    await registry.secureKey(KEY);
    await registry.setBinary(KEY, "Secrets", Buffer.from("x"));
    return { api, registry };
  }

  for (const [method, c] of Object.entries(calls)) {
    test(`${method}: 5 is access denied, naming elevation`, async () => {
      const { api, registry } = await withKey();
      api.failNext(c.op, WIN32_ERROR.ACCESS_DENIED);
      await assert.rejects(c.run(registry), (e: unknown) => {
        assert.ok(e instanceof BioError);
        assert.equal(e.code, "SECRET_ACCESS");
        assert.match(e.message, new RegExp(`denied \\(${c.win32}, Win32 error 5\\)`));
        assert.match(e.hint ?? "", /Run as administrator/);
        assert.equal(e.context.win32Error, 5);
        return true;
      });
    });

    test(`${method}: any other number is reported with the number and how to look it up`, async () => {
      for (const [n, name] of [
        [WIN32_ERROR.KEY_DELETED, "ERROR_KEY_DELETED"],
        [WIN32_ERROR.NO_SYSTEM_RESOURCES, "ERROR_NO_SYSTEM_RESOURCES"],
        [4242, undefined],
      ] as const) {
        const { api, registry } = await withKey();
        api.failNext(c.op, n);
        await assert.rejects(c.run(registry), (e: unknown) => {
          assert.ok(e instanceof BioError);
          assert.equal(e.code, "SECRET_ACCESS");
          assert.match(e.message, new RegExp(`${c.win32} on .* failed with Win32 error ${n}`));
          if (name) assert.match(e.message, new RegExp(`\\(${name}\\)`));
          else assert.doesNotMatch(e.message, /\(ERROR_/);
          assert.match(e.hint ?? "", new RegExp(`certutil -error ${n}`));
          assert.doesNotMatch(e.message, /Run as administrator/);
          return true;
        });
      }
    });
  }

  test("2 from the query is 'not stored', which the enrollment reports as not enrolled", async () => {
    const api = new MemoryRegistryApi();
    const registry = new Win32Registry(api);
    assert.equal(await registry.getBinary(KEY, "Secrets"), undefined, "no key at all");
    await registry.secureKey(KEY);
    assert.equal(await registry.getBinary(KEY, "Secrets"), undefined, "a key without the value");
    const store = new EnvelopeSecretStore(
      new RegistryEnvelopeStorage(registry, KEY, "Secrets"),
      new DpapiKeyProtector(new FakeDpapi()),
      { keyGeneration: 2 },
    );
    await assert.rejects(loadEnrollment(store), { code: "NOT_ENROLLED", message: /bioapi enroll/ });
  });

  test("2 from delete is done; 2 from set (key deleted meanwhile) says so", async () => {
    const { api, registry } = await withKey();
    await registry.deleteValue(KEY, "Secrets");
    await registry.deleteValue(KEY, "Secrets");
    api.failNext("setBinary", WIN32_ERROR.FILE_NOT_FOUND);
    await assert.rejects(registry.setBinary(KEY, "Secrets", Buffer.from("x")), {
      code: "SECRET_ACCESS",
      message: /does not exist.*recreates the key/,
    });
  });

  test("a value of another type is refused as corrupt; a key outside HKLM is a usage error", async () => {
    const api = new MemoryRegistryApi();
    api.plant("SOFTWARE\\CamsBioApi", "Secrets", { type: REG_TYPE.SZ, data: Buffer.from("h\0i\0") });
    await assert.rejects(new Win32Registry(api).getBinary(KEY, "Secrets"), {
      code: "SECRET_CORRUPT",
      message: /is REG_SZ, expected REG_BINARY/,
    });
    await assert.rejects(new Win32Registry(api).getBinary("HKCU\\Software\\X", "Secrets"), { code: "USAGE" });
  });

  test("the key is created with the administrators-only SDDL, below HKLM", async () => {
    const api = new MemoryRegistryApi();
    await new Win32Registry(api).secureKey("HKEY_LOCAL_MACHINE\\SOFTWARE\\CamsBioApi");
    assert.equal(api.sddlOf("SOFTWARE\\CamsBioApi"), SECRETS_KEY_SDDL);
  });
});

describe("no child process on the Windows secrets path", () => {
  const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "..");

  /** Every module reachable from `roots` by import (type imports included: an Exec type here means intent to spawn). */
  async function importGraph(roots: readonly string[]): Promise<Map<string, string[]>> {
    const graph = new Map<string, string[]>();
    const pending = roots.map((r) => resolve(SRC, r));
    while (pending.length > 0) {
      const file = pending.pop() as string;
      if (graph.has(file)) continue;
      const text = await readFile(file, "utf8");
      const specifiers = [...text.matchAll(/^(?:import|export)\b[^;]*?from\s+"([^"]+)"/gms)].map((m) => m[1] as string);
      graph.set(file, specifiers);
      for (const s of specifiers) if (s.startsWith(".")) pending.push(resolve(dirname(file), s));
    }
    return graph;
  }

  test("the modules that read and write the registry envelope import neither child_process nor exec", async () => {
    const graph = await importGraph([
      "secrets/registry.ts",
      "platform/windows/registry-api.ts",
      "secrets/envelope-storage.ts",
      "secrets/envelope-secret-store.ts",
      "secrets/dpapi-key-protector.ts",
      "secrets/enrollment.ts",
      "platform/windows/koffi-registry-api.ts",
    ]);
    assert.ok(graph.has(resolve(SRC, "platform/native.ts")), "the walk follows imports (sanity)");
    for (const [file, specifiers] of graph) {
      for (const s of specifiers) {
        assert.ok(!/^(node:)?child_process$/.test(s), `${file} imports ${s}`);
        assert.ok(!/\/exec\.ts$/.test(s), `${file} imports ${s}`);
      }
    }
  });

  test("enroll, read back, rotation and delete spawn nothing (child_process intercepted)", async () => {
    const spawned: string[] = [];
    const names = ["spawn", "spawnSync", "exec", "execSync", "execFile", "execFileSync", "fork"] as const;
    const cp = childProcess as unknown as Record<string, unknown>;
    const originals = names.map((n) => cp[n]);
    for (const n of names) {
      cp[n] = (...args: unknown[]) => {
        spawned.push(`${n} ${JSON.stringify(args[0])}`);
        throw new Error(`child_process.${n} called on the secrets path`);
      };
    }
    syncBuiltinESMExports();
    try {
      const api = new MemoryRegistryApi();
      const dpapi = new FakeDpapi();
      const open = (keyGeneration?: number) =>
        new EnvelopeSecretStore(
          new RegistryEnvelopeStorage(new Win32Registry(api), "HKLM\\SOFTWARE\\CamsBioApi", "Secrets"),
          new DpapiKeyProtector(dpapi),
          keyGeneration === undefined ? {} : { keyGeneration },
        );
      const enrollment = {
        cloudUrl: "https://cloud.example",
        nodeId: "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
        nodeSecret: randomBytes(32).toString("base64url"),
      };
      await saveEnrollment(open(), enrollment);
      const upgraded = open(2);
      assert.deepEqual(await loadEnrollment(upgraded), enrollment);
      await upgraded.rotate();
      await upgraded.delete("enrollment");
      assert.ok(api.calls.length > 0);
    } finally {
      names.forEach((n, i) => {
        cp[n] = originals[i];
      });
      syncBuiltinESMExports();
    }
    assert.deepEqual(spawned, []);
  });
});
