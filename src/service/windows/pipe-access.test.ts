import assert from "node:assert/strict";
import { test } from "node:test";
import { healthPipeSddl, serviceSid } from "./pipe-access.ts";

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
