import assert from "node:assert/strict";
import { describe, it, test } from "node:test";
import { BioError } from "../../core/errors.ts";
import { windowsServices } from "../../service/windows/install.ts";
import { MemoryServiceManagerApi } from "./memory-service-manager-api.ts";
import { binPath, type ServiceManagerApi, serviceError, WIN32, win32CodeOf } from "./service-manager-api.ts";

const { connector } = windowsServices(["C:\\Cams\\bioapi.exe"], "C:\\ProgramData\\CamsBioApi", "HKLM\\SOFTWARE\\X");

/**
 * The contract every backend keeps; the memory one runs here, the advapi32 one under Wine (npm run test:wine) and on
 * Windows. The callers (install, status, the monitor) rely on exactly these answers.
 */
function contract(name: string, make: () => ServiceManagerApi) {
  describe(`ServiceManagerApi contract: ${name}`, () => {
    it("a service that is not installed is ERROR_SERVICE_DOES_NOT_EXIST for query, start and stop; delete says absent", async () => {
      const scm = make();
      for (const call of [() => scm.query("CamsBioApi"), () => scm.start("CamsBioApi"), () => scm.stop("CamsBioApi")]) {
        await assert.rejects(call(), (e: unknown) => win32CodeOf(e) === WIN32.SERVICE_DOES_NOT_EXIST);
      }
      assert.equal(await scm.delete("CamsBioApi"), "absent");
    });

    it("create, query stopped, start, already running, stop, not active; names are case-insensitive", async () => {
      const scm = make();
      await scm.create(connector);
      assert.deepEqual(await scm.query("camsbioapi"), {
        state: "stopped",
        pid: null,
        win32ExitCode: 0,
        serviceExitCode: 0,
      });
      assert.equal(await scm.start("CamsBioApi"), "started");
      const running = await scm.query("CamsBioApi");
      assert.equal(running.state, "running");
      assert.ok((running.pid ?? 0) > 0, "a running service has its process id");
      assert.equal(await scm.start("CamsBioApi"), "already-running");
      assert.equal(await scm.stop("CamsBioApi"), "stopping");
      assert.equal((await scm.query("CamsBioApi")).state, "stopped");
      assert.equal(await scm.stop("CamsBioApi"), "not-active");
    });

    it("a second create is ERROR_SERVICE_EXISTS with the uninstall hint; recovery applies to an installed service only", async () => {
      const scm = make();
      await scm.create(connector);
      await assert.rejects(scm.create(connector), (e: unknown) => {
        assert.equal(win32CodeOf(e), WIN32.SERVICE_EXISTS);
        assert.match((e as BioError).hint ?? "", /bioapi service uninstall/);
        return true;
      });
      await scm.setRecovery("CamsBioApi", connector.recovery);
      await assert.rejects(
        scm.setRecovery("Other", connector.recovery),
        (e: unknown) => win32CodeOf(e) === WIN32.SERVICE_DOES_NOT_EXIST,
      );
      assert.equal(await scm.delete("CamsBioApi"), "deleted");
      await assert.rejects(scm.query("CamsBioApi"), (e: unknown) => win32CodeOf(e) === WIN32.SERVICE_DOES_NOT_EXIST);
    });
  });
}

contract("memory", () => new MemoryServiceManagerApi());

test("memory backend: a running service is only marked for delete; a start then says so; the process's end removes it", async () => {
  const scm = new MemoryServiceManagerApi();
  await scm.create(connector);
  await scm.start("CamsBioApi");
  assert.equal(await scm.delete("CamsBioApi"), "deleted");
  await assert.rejects(scm.create(connector), (e: unknown) => win32CodeOf(e) === WIN32.SERVICE_MARKED_FOR_DELETE);
  scm.exit("CamsBioApi", 0);
  await scm.create(connector);
  // Injected errors surface as the same typed error.
  scm.failNext("start", WIN32.ACCESS_DENIED);
  await assert.rejects(scm.start("CamsBioApi"), /Windows error 5/);
});

test("Win32 error codes map to the fix, in every display language (no message text is read)", () => {
  const cases: Array<[number, RegExp]> = [
    [WIN32.ACCESS_DENIED, /elevated prompt/],
    [WIN32.SERVICE_DOES_NOT_EXIST, /bioapi service install/],
    [WIN32.SERVICE_EXISTS, /uninstall it first/],
    [WIN32.DUPLICATE_SERVICE_NAME, /uninstall it first/],
    [WIN32.SERVICE_MARKED_FOR_DELETE, /Services console/],
    [WIN32.SERVICE_DISABLED, /disabled/],
    [WIN32.SERVICE_REQUEST_TIMEOUT, /connector\.log/],
    [1234, /Event Log/],
  ];
  for (const [code, hint] of cases) {
    const e = serviceError("StartService", "CamsBioApi", code);
    assert.ok(e instanceof BioError);
    assert.equal(e.code, "SERVICE");
    assert.match(e.message, new RegExp(`StartService for service CamsBioApi failed with Windows error ${code}\\.`));
    assert.match(e.hint ?? "", hint, `code ${code}`);
    assert.equal(win32CodeOf(e), code);
  }
  assert.equal(win32CodeOf(new Error("x")), undefined);
  assert.equal(win32CodeOf(new BioError("USAGE", "x", { context: { win32: 5 } })), undefined);
});

test("binPath quotes the executable always and arguments with spaces or quotes", () => {
  assert.equal(
    binPath("C:\\Program Files\\Cams\\bioapi.exe", ["run", "--data-dir", "C:\\My Data", 'a"b']),
    '"C:\\Program Files\\Cams\\bioapi.exe" run --data-dir "C:\\My Data" "a\\"b"',
  );
});
