import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { BioError } from "../../core/errors.ts";
import {
  assertDataDirOwned,
  checkDataDirOwner,
  claimDataDir,
  DATA_DIR_SDDL,
  FILE_ERROR,
  type FileSecurityApi,
  fileSecurityError,
  prepareDataDir,
  SID,
} from "./file-security-api.ts";
import { KoffiFileSecurityApi } from "./koffi-file-security-api.ts";
import { MemoryFileSecurityApi } from "./memory-file-security-api.ts";
import type { Win32Outcome } from "./registry-api.ts";

const onWindows = process.platform === "win32";
/** A standard user's SID, as Windows would report the owner of a folder they created. */
const BOB = "S-1-5-21-1004336348-1177238915-682003330-1001";

function value<T>(outcome: Win32Outcome<T>): T {
  assert.ok(outcome.ok, `expected success, got Win32 error ${outcome.ok ? "" : outcome.error}`);
  return outcome.value;
}

function error(outcome: Win32Outcome<unknown>): number | undefined {
  return outcome.ok ? undefined : outcome.error;
}

interface Volume {
  readonly api: FileSecurityApi;
  readonly root: string;
  /** Creates a folder (or a file) as the caller would. */
  make(path: string, kind: "dir" | "file"): void;
}

/** The one contract both implementations keep; the koffi one runs it on Windows (elevated) against NTFS. */
const implementations: Record<string, () => Volume> = {
  "in-memory": () => {
    const api = new MemoryFileSecurityApi();
    const root = "C:\\ProgramData";
    api.create(root, { owner: SID.SYSTEM, dacl: "D:(A;OICI;FA;;;SY)" });
    return { api, root, make: (path) => api.create(path, { owner: BOB, dacl: `D:(A;OICI;FA;;;${BOB})` }) };
  },
  ...(onWindows
    ? {
        "koffi (advapi32)": () => ({
          api: new KoffiFileSecurityApi(),
          root: tmpdir(),
          make: (path: string, kind: "dir" | "file") => (kind === "dir" ? mkdirSync(path) : writeFileSync(path, "x")),
        }),
      }
    : {}),
};

for (const [name, make] of Object.entries(implementations)) {
  describe(`FileSecurityApi contract: ${name}`, () => {
    test("a missing entry is ERROR_FILE_NOT_FOUND, or ERROR_PATH_NOT_FOUND when its folder is missing too", async () => {
      const { api, root } = make();
      const missing = join(root, `cams-${randomBytes(6).toString("hex")}`).replaceAll("/", "\\");
      assert.equal(error(await api.owner(missing)), FILE_ERROR.FILE_NOT_FOUND);
      assert.equal(error(await api.owner(`${missing}\\inner`)), FILE_ERROR.PATH_NOT_FOUND);
      assert.equal(error(await api.secure(missing)), FILE_ERROR.FILE_NOT_FOUND);
    });

    test("createDir makes a folder owned by Administrators; a second create, or one under a missing folder, fails", async () => {
      const { api, root } = make();
      const dir = join(root, `cams-${randomBytes(6).toString("hex")}`).replaceAll("/", "\\");
      value(await api.createDir(dir));
      assert.equal(value(await api.owner(dir)), SID.ADMINISTRATORS);
      assert.equal(error(await api.createDir(dir)), FILE_ERROR.ALREADY_EXISTS);
      assert.equal(error(await api.createDir(`${dir}\\a\\b`)), FILE_ERROR.PATH_NOT_FOUND);
    });

    test("secure makes Administrators the owner of the folder and of everything below it", async () => {
      const { api, root, make: create } = make();
      const dir = join(root, `cams-${randomBytes(6).toString("hex")}`).replaceAll("/", "\\");
      create(dir, "dir");
      create(`${dir}\\native`, "dir");
      create(`${dir}\\native\\koffi.node`, "file");
      create(`${dir}\\config.json`, "file");
      const before = value(await api.owner(dir));
      assert.notEqual(before, SID.ADMINISTRATORS, "created by the caller, not by the Administrators group");
      value(await api.secure(dir));
      for (const p of [dir, `${dir}\\native`, `${dir}\\native\\koffi.node`, `${dir}\\CONFIG.JSON`])
        assert.equal(value(await api.owner(p)), SID.ADMINISTRATORS, p);
    });
  });
}

describe("the in-memory volume keeps the access lists", () => {
  test("secure gives the root the protected DACL and every entry below only what it inherits", async () => {
    const api = new MemoryFileSecurityApi();
    api.create("C:\\ProgramData\\CamsBioApi", { owner: SID.ADMINISTRATORS, dacl: "D:(A;OICI;FA;;;BU)" });
    api.create("C:\\ProgramData\\CamsBioApi\\logs", { owner: BOB, dacl: `D:(A;;FA;;;${BOB})` });
    api.create("C:\\ProgramData\\CamsBioApiOther", { owner: BOB, dacl: "D:(A;;FA;;;BU)" });
    value(await api.secure("c:\\programdata\\camsbioapi\\"));
    assert.deepEqual(api.securityOf("C:\\ProgramData\\CamsBioApi"), {
      owner: SID.ADMINISTRATORS,
      dacl: "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)",
    });
    assert.deepEqual(api.securityOf("C:\\ProgramData\\CamsBioApi\\logs"), {
      owner: SID.ADMINISTRATORS,
      dacl: "inherited",
    });
    assert.deepEqual(api.securityOf("C:\\ProgramData\\CamsBioApiOther"), { owner: BOB, dacl: "D:(A;;FA;;;BU)" });
  });

  test("a denied path and an injected fault answer their numbers", async () => {
    const api = new MemoryFileSecurityApi();
    api.create("C:\\D", { owner: SID.SYSTEM, dacl: "" });
    api.denied.add("C:\\D");
    assert.equal(error(await api.owner("C:\\D")), FILE_ERROR.ACCESS_DENIED);
    assert.equal(error(await api.secure("C:\\D\\x")), FILE_ERROR.ACCESS_DENIED);
    api.denied.clear();
    api.failNext("secure", FILE_ERROR.PRIVILEGE_NOT_HELD);
    assert.equal(error(await api.secure("C:\\D")), FILE_ERROR.PRIVILEGE_NOT_HELD);
    value(await api.secure("C:\\D"));
  });

  test("the data directory's SDDL: owner Administrators, SYSTEM and Administrators only, inherited, protected", () => {
    assert.match(DATA_DIR_SDDL, /^O:BAD:PAI\(/);
    const aces = DATA_DIR_SDDL.match(/\([^)]*\)/g) ?? [];
    assert.deepEqual(aces, ["(A;OICI;FA;;;SY)", "(A;OICI;FA;;;BA)"]);
  });
});

describe("who may own the data directory", () => {
  test("SYSTEM, Administrators and TrustedInstaller are accepted", () => {
    for (const sid of [SID.SYSTEM, SID.ADMINISTRATORS, SID.TRUSTED_INSTALLER, SID.TRUSTED_INSTALLER.toLowerCase()])
      checkDataDirOwner("C:\\ProgramData\\CamsBioApi", sid);
  });

  test("the account this process runs as may own it (an elevated administrator's own folder; Wine's files)", () => {
    checkDataDirOwner("C:\\ProgramData\\CamsBioApi", BOB, BOB.toLowerCase());
    assert.throws(() => checkDataDirOwner("C:\\ProgramData\\CamsBioApi", BOB, "S-1-5-21-1-2-3-500"), /owned by/);
  });

  test("anyone else is refused, naming the owner and the fix", () => {
    for (const sid of [BOB, "S-1-5-32-545", "S-1-1-0", "S-1-5-11", "S-1-3-0", ""]) {
      assert.throws(
        () => checkDataDirOwner("C:\\ProgramData\\CamsBioApi", sid),
        (e: unknown) =>
          e instanceof BioError &&
          e.code === "SERVICE" &&
          e.message.includes(`owned by ${sid},`) &&
          /takeown \/f "C:\\ProgramData\\CamsBioApi" \/a \/r/.test(e.hint ?? "") &&
          /bioapi service install again/.test(e.hint ?? ""),
        sid,
      );
    }
  });

  test("Win32 errors are told apart by number", () => {
    assert.match(fileSecurityError("X", "C:\\D", FILE_ERROR.ACCESS_DENIED).hint ?? "", /elevated/);
    assert.match(fileSecurityError("X", "C:\\D", FILE_ERROR.PRIVILEGE_NOT_HELD).hint ?? "", /elevated/);
    assert.match(fileSecurityError("X", "C:\\D", FILE_ERROR.PATH_NOT_FOUND).message, /C:\\D does not exist/);
    assert.match(fileSecurityError("X", "C:\\D", FILE_ERROR.FILE_NOT_FOUND).hint ?? "", /service install/);
    const other = fileSecurityError("X", "C:\\D", FILE_ERROR.INVALID_OWNER);
    assert.match(other.message, /Win32 error 1307 \(ERROR_INVALID_OWNER\)/);
    assert.match(other.hint ?? "", /certutil -error 1307/);
  });
});

describe("the installer's data directory step", () => {
  const DIR = "C:\\ProgramData\\CamsBioApi";

  function volume() {
    const api = new MemoryFileSecurityApi();
    api.create("C:\\ProgramData", { owner: SID.SYSTEM, dacl: "D:(A;CI;DCLCRPCR;;;BU)" });
    const made: string[] = [];
    const mkdirs = {
      parent: async (path: string) => {
        made.push(`parent of ${path}`);
      },
      inside: async (path: string) => {
        made.push(`inside ${path}`);
        api.create(`${path}\\logs`, { owner: SID.ADMINISTRATORS, dacl: "inherited" });
      },
    };
    return { api, made, mkdir: mkdirs };
  }

  test("a junction at the data directory (or above it) is refused by install, enroll and the start check, untouched", async () => {
    const { api, made, mkdir } = volume();
    // Any user may create a junction in ProgramData, pointing it at a system folder owned by SYSTEM.
    api.create(DIR, { owner: SID.SYSTEM, dacl: "D:(A;OICI;FA;;;BU)" });
    api.links.add(DIR);
    for (const run of [
      () => prepareDataDir(api, DIR, mkdir),
      () => claimDataDir(api, DIR, mkdir.parent),
      () => assertDataDirOwned(api, DIR),
    ]) {
      await assert.rejects(run(), /is a junction or symbolic link, so .* is not a folder of its own/);
    }
    assert.deepEqual(api.calls, [], "the target's owner is not even read, and nothing is reset");
    assert.deepEqual(made, []);
    api.links.clear();
    api.links.add("C:\\ProgramData");
    await assert.rejects(assertDataDirOwned(api, `${DIR}\\sub`), /c:\\programdata is a junction/i);
  });

  test("enroll resets a folder this account made but Administrators do not own, as install would", async () => {
    const { api, mkdir } = volume();
    api.create(DIR, { owner: api.selfSid, dacl: `D:(A;OICI;FA;;;${api.selfSid})` });
    await claimDataDir(api, DIR, mkdir.parent);
    assert.deepEqual(
      api.calls.map((c) => c.op),
      ["owner", "secure"],
    );
    assert.equal(api.securityOf(DIR)?.owner, SID.ADMINISTRATORS);
  });

  test("enroll before install: a missing folder is created owned by Administrators; a user's folder is refused untouched", async () => {
    const fresh = volume();
    await claimDataDir(fresh.api, DIR, fresh.mkdir.parent);
    assert.deepEqual(
      fresh.api.calls.map((c) => c.op),
      ["owner", "createDir"],
    );
    assert.equal(fresh.api.securityOf(DIR)?.owner, SID.ADMINISTRATORS);
    // The install that follows accepts what enroll made.
    await prepareDataDir(fresh.api, DIR, fresh.mkdir);

    const taken = volume();
    taken.api.create(DIR, { owner: BOB, dacl: `D:(A;OICI;FA;;;${BOB})` });
    await assert.rejects(claimDataDir(taken.api, DIR, taken.mkdir.parent), new RegExp(`owned by ${BOB}`));
    assert.deepEqual(
      taken.api.calls.map((c) => c.op),
      ["owner"],
    );
    // A folder that appears between the check and the create is checked, not trusted.
    const raced = volume();
    raced.api.onCreateDir = (path) => raced.api.create(path, { owner: BOB, dacl: "inherited" });
    await assert.rejects(claimDataDir(raced.api, DIR, raced.mkdir.parent), new RegExp(`owned by ${BOB}`));
  });

  test("a folder a standard user created beforehand is refused before anything is created or changed", async () => {
    const { api, made, mkdir } = volume();
    // The attack: a standard user prepares the folder and a module of their own inside it.
    api.create(DIR, { owner: BOB, dacl: `D:(A;OICI;FA;;;${BOB})` });
    api.create(`${DIR}\\native\\koffi.node`, { owner: BOB, dacl: "inherited" });
    await assert.rejects(prepareDataDir(api, DIR, mkdir), (e: unknown) => {
      return e instanceof BioError && e.message.includes(`owned by ${BOB}`);
    });
    assert.deepEqual(made, []);
    assert.deepEqual(
      api.calls.map((c) => c.op),
      ["owner"],
    );
    assert.equal(api.securityOf(DIR)?.owner, BOB, "left as found");
  });

  test("a new folder is created with the protected access list in one call, then logs inside it", async () => {
    const { api, made, mkdir } = volume();
    await prepareDataDir(api, DIR, mkdir);
    assert.deepEqual(made, [`parent of ${DIR}`, `inside ${DIR}`]);
    assert.deepEqual(
      api.calls.map((c) => c.op),
      ["owner", "createDir", "secure"],
    );
    assert.deepEqual(api.securityOf(DIR), { owner: SID.ADMINISTRATORS, dacl: "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)" });
  });

  test("a folder a standard user creates between the check and the create is refused too", async () => {
    const { api, mkdir } = volume();
    api.onCreateDir = (path) => api.create(path, { owner: BOB, dacl: `D:(A;OICI;FA;;;${BOB})` });
    await assert.rejects(prepareDataDir(api, DIR, mkdir), (e: unknown) => {
      return e instanceof BioError && e.message.includes(`owned by ${BOB}`);
    });
    assert.deepEqual(
      api.calls.map((c) => c.op),
      ["owner", "createDir", "owner"],
    );
    assert.equal(api.securityOf(DIR)?.owner, BOB);
  });

  test("an earlier install's folder (owner Administrators) is secured again, down the tree", async () => {
    const { api, mkdir } = volume();
    api.create(DIR, { owner: SID.ADMINISTRATORS, dacl: "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)" });
    api.create(`${DIR}\\logs\\connector.log`, { owner: SID.SYSTEM, dacl: `D:(A;;FA;;;${BOB})` });
    await prepareDataDir(api, DIR, mkdir);
    assert.deepEqual(api.securityOf(`${DIR}\\logs\\connector.log`), { owner: SID.ADMINISTRATORS, dacl: "inherited" });
  });

  test("a non-elevated caller gets the elevation hint, not a partial install", async () => {
    const { api, mkdir, made } = volume();
    api.create(DIR, { owner: SID.ADMINISTRATORS, dacl: "" });
    api.denied.add(DIR);
    await assert.rejects(prepareDataDir(api, DIR, mkdir), /denied \(GetNamedSecurityInfo, Win32 error 5\)/);
    assert.deepEqual(made, []);
  });

  test("a failure to secure is reported with its number", async () => {
    const { api, mkdir } = volume();
    api.failNext("secure", FILE_ERROR.INVALID_OWNER);
    await assert.rejects(prepareDataDir(api, DIR, mkdir), /TreeResetNamedSecurityInfo on .* Win32 error 1307/);
  });
});

describe("the service's start check", () => {
  test("accepts an administrators' data directory; refuses a foreign-owned or missing one", async () => {
    const api = new MemoryFileSecurityApi();
    api.create("C:\\Data\\Ok", { owner: SID.ADMINISTRATORS, dacl: "" });
    api.create("C:\\Data\\Bob", { owner: BOB, dacl: "" });
    await assertDataDirOwned(api, "C:\\Data\\Ok");
    await assert.rejects(assertDataDirOwned(api, "C:\\Data\\Bob"), (e: unknown) => {
      return e instanceof BioError && e.message.includes(`owned by ${BOB}`);
    });
    await assert.rejects(assertDataDirOwned(api, "C:\\Data\\Gone"), /C:\\Data\\Gone does not exist/);
  });
});
