import assert from "node:assert/strict";
import { test } from "node:test";
import { BioError } from "../../core/errors.ts";
import { camsCallbackUrl, camsLogTime, camsOperationId, camsSendTime, encodeCamsPunch } from "./cams-callback-codec.ts";

test("LogTime keeps the device's wall clock and its offset: positive, negative, zero, Z", () => {
  assert.equal(camsLogTime("2024-09-17T08:00:00+03:00"), "2024-09-17 08:00:00 GMT +0300");
  assert.equal(camsLogTime("2024-09-17T08:00:00+05:30"), "2024-09-17 08:00:00 GMT +0530");
  assert.equal(camsLogTime("2024-12-31T23:59:59-05:00"), "2024-12-31 23:59:59 GMT -0500");
  assert.equal(camsLogTime("2024-01-01T00:00:00-09:30"), "2024-01-01 00:00:00 GMT -0930");
  assert.equal(camsLogTime("2024-09-17T08:00:00+00:00"), "2024-09-17 08:00:00 GMT +0000");
  assert.equal(camsLogTime("2024-09-17T08:00:00Z"), "2024-09-17 08:00:00 GMT +0000");
  assert.equal(camsLogTime("2024-09-17T08:00:00.250+0300"), "2024-09-17 08:00:00 GMT +0300");
  assert.equal(camsLogTime("2024-09-17T08:00+03:00"), "2024-09-17 08:00:00 GMT +0300");
});

test("a time without an offset cannot be carried, and the error says so", () => {
  assert.throws(
    () => camsLogTime("2024-09-17T08:00:00"),
    (e) => e instanceof BioError && e.code === "ROW_INVALID" && /not ISO 8601 with a UTC offset/.test(e.message),
  );
});

test("Time is the send time in UTC, in the samples' format", () => {
  assert.equal(camsSendTime(Date.UTC(2020, 8, 17, 4, 19, 3, 999)), "2020-09-17 04:19:03 GMT +0000");
});

test("OperationID is the punch id shaped as a UUID, the same on every call", () => {
  const id = "0123456789abcdef0123456789abcdef";
  assert.equal(camsOperationId(id), "01234567-89ab-cdef-0123-456789abcdef");
  const other = camsOperationId("not-a-hex-id");
  assert.match(other, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(camsOperationId("not-a-hex-id"), other);
  assert.notEqual(camsOperationId("not-a-hex-id2"), other);
});

test("stgid joins the URL's own query", () => {
  assert.equal(camsCallbackUrl("https://erp.example/api/cb", "CKJ1"), "https://erp.example/api/cb?stgid=CKJ1");
  assert.equal(
    camsCallbackUrl("https://erp.example/api/cb?key=abc&x=1", "CKJ 1"),
    "https://erp.example/api/cb?key=abc&x=1&stgid=CKJ+1",
  );
});

test("a punch becomes a RealTime body, field for field", () => {
  const punch = {
    id: "0123456789abcdef0123456789abcdef",
    deviceSerial: "CKJ7201001",
    userId: "42",
    time: "2024-09-17T08:00:00+03:00",
    state: "checkOut",
    stateCode: 1,
    verify: "face",
    verifyCode: 15,
    source: "zk",
    collectedAt: "2024-09-17T05:00:01.000Z",
  };
  const request = encodeCamsPunch(JSON.stringify(punch), {
    authToken: "tok",
    labels: { CKJ7201001: "Main Gate" },
    nowMs: Date.UTC(2024, 8, 17, 5, 1, 0),
  });
  assert.equal(request.serial, "CKJ7201001");
  assert.equal(
    request.body,
    JSON.stringify({
      RealTime: {
        OperationID: "01234567-89ab-cdef-0123-456789abcdef",
        SerialNumber: "CKJ7201001",
        LabelName: "Main Gate",
        PunchLog: {
          Type: "CheckOut",
          InputType: "Face",
          UserId: "42",
          LogTime: "2024-09-17 08:00:00 GMT +0300",
          Temperature: "",
        },
        AuthToken: "tok",
        Time: "2024-09-17 05:01:00 GMT +0000",
      },
    }),
  );
  const unlabelled = JSON.parse(
    encodeCamsPunch(JSON.stringify({ ...punch, state: "constructor", verify: "toString" }), {
      authToken: "",
      labels: {},
      nowMs: 0,
    }).body,
  );
  assert.equal(unlabelled.RealTime.LabelName, "CKJ7201001");
  assert.equal(unlabelled.RealTime.PunchLog.Type, "Unknown");
  assert.equal(unlabelled.RealTime.PunchLog.InputType, "Unknown");
});

test("an entry that is not a punch is refused with the cause", () => {
  const options = { authToken: "", labels: {}, nowMs: 0 };
  assert.throws(() => encodeCamsPunch("{", options), /not a punch's JSON/);
  assert.throws(() => encodeCamsPunch("{}", options), /lacks the punch's id/);
});
