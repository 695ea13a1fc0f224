import assert from "node:assert/strict";
import { test } from "node:test";
import { makePunch, punchId, stateName, verifyName } from "./punch.ts";

test("punch id is deterministic and covers serial, user, local time and state", () => {
  const base = punchId("CKJ123", "42", "2026-11-26T08:59:03", 0);
  assert.equal(base, punchId("CKJ123", "42", "2026-11-26T08:59:03", 0));
  assert.match(base, /^[0-9a-f]{32}$/);
  const variants = [
    punchId("CKJ124", "42", "2026-11-26T08:59:03", 0),
    punchId("CKJ123", "43", "2026-11-26T08:59:03", 0),
    punchId("CKJ123", "42", "2026-11-26T08:59:04", 0),
    punchId("CKJ123", "42", "2026-11-26T08:59:03", 1),
  ];
  assert.equal(new Set([base, ...variants]).size, 5);
});

test("the separator keeps field boundaries: ('A1','2') and ('A','12') differ", () => {
  assert.notEqual(punchId("A1", "2", "2026-01-01T00:00:00", 0), punchId("A", "12", "2026-01-01T00:00:00", 0));
});

test("punch id matches the documented recipe (docs/protocol.md)", async () => {
  const { createHash } = await import("node:crypto");
  const expected = createHash("sha256").update("S1\u001fU1\u001f2026-11-26T08:00:00\u001f1").digest("hex").slice(0, 32);
  assert.equal(punchId("S1", "U1", "2026-11-26T08:00:00", 1), expected);
});

test("raw codes are kept beside mapped names; unknown codes stay visible", () => {
  const p = makePunch({
    deviceSerial: "S",
    userId: "7",
    local: "2026-11-26T09:00:00",
    iso: "2026-11-26T09:00:00+05:30",
    stateCode: 1,
    verifyCode: 15,
    source: "database",
    collectedAt: "2026-11-26T03:30:01.000Z",
  });
  assert.equal(p.state, "checkOut");
  assert.equal(p.stateCode, 1);
  assert.equal(p.verify, "face");
  assert.equal(p.verifyCode, 15);
  assert.equal(stateName(99), "other");
  assert.equal(verifyName(77), "other");
  assert.equal(verifyName(null), "unknown");
  assert.equal("workCode" in p, false);
});
