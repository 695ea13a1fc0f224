import assert from "node:assert/strict";
import { test } from "node:test";
import { healthPipeSddl, pipeError, serviceSid } from "./pipe-access.ts";

test("service SIDs are derived as Windows derives them (TrustedInstaller's is published)", () => {
  assert.equal(serviceSid("TrustedInstaller"), "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464");
  assert.equal(serviceSid("trustedinstaller"), serviceSid("TRUSTEDINSTALLER"), "case does not matter");
  assert.match(serviceSid("CamsBioApi"), /^S-1-5-80(-\d+){5}$/);
});

test("the health pipe's access list: protected, SYSTEM, Administrators and the connector's service SID, nobody else", () => {
  assert.equal(healthPipeSddl("CamsBioApi"), `D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;${serviceSid("CamsBioApi")})`);
  assert.doesNotMatch(
    healthPipeSddl("CamsBioApi"),
    /;WD\)|;AU\)|;BU\)|;AN\)|;CO\)/,
    "no Everyone, users, anonymous or creator owner",
  );
});

test("health pipe errors name the fix by Win32 number", () => {
  const cases: Array<[number, RegExp]> = [
    [5, /as LocalSystem/],
    [2, /not serving its health channel/],
    [231, /every instance busy/],
    [87, /connector's log/],
  ];
  for (const [code, hint] of cases) {
    const e = pipeError("GetNamedPipeServerProcessId", "\\\\.\\pipe\\x", code);
    assert.equal(e.code, "SERVICE");
    assert.match(e.message, new RegExp(`failed with Windows error ${code}\\.`));
    assert.match(e.hint ?? "", hint);
    assert.equal(e.context.win32, code);
  }
});
