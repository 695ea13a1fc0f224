import assert from "node:assert/strict";
import { test } from "node:test";
import { dbError, scrub } from "./db-errors.ts";

const ctx = (password: string) => ({
  engine: "mysql",
  where: "mysql 10.0.0.5:3306/att as bioapi",
  secrets: [password],
});

test("scrub removes the password from a driver's message, plain, in a URL, and with regex characters", () => {
  const password = "Pa$$w0rd.(x)*";
  const syntax = `You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'IDENTIFIED BY '${password}'' at line 1`;
  const out = scrub(syntax, [password]);
  assert.ok(!out.includes(password), out);
  assert.match(out, /IDENTIFIED BY '\[redacted\]'/);
  // A URL echoed by a driver carries the password percent-encoded: the raw secret does not match, the URL rule does.
  const url = scrub("getaddrinfo ENOTFOUND postgres://bioapi:Pa%24%24w0rd.(x)*@db.example:5432/biotime", [password]);
  assert.equal(url, "getaddrinfo ENOTFOUND postgres://bioapi:[redacted]@db.example:5432/biotime");
  // Every occurrence, not the first only.
  assert.equal(scrub(`${password} and ${password}`, [password]), "[redacted] and [redacted]");
});

test("dbError keeps the driver's text without the password and maps the driver code", () => {
  const password = "hunter2-secret";
  const error = Object.assign(
    new Error(
      `Access denied for user 'bioapi'@'10.0.0.9' (using password: YES) [connect: mysql://bioapi:${password}@10.0.0.5/att]`,
    ),
    { code: "ER_ACCESS_DENIED_ERROR", errno: 1045 },
  );
  const e = dbError(error, ctx(password));
  assert.equal(e.code, "DB_AUTH");
  assert.ok(!e.message.includes(password), e.message);
  assert.match(
    e.message,
    /Authentication failed \(mysql 10\.0\.0\.5:3306\/att as bioapi\): Access denied for user 'bioapi'/,
  );
});

test("an engine's auth failure names that engine's fix, and the driver's text ends before the hint begins", () => {
  const denied = Object.assign(new Error("Access denied for user 'bioapi'@'10.0.0.9' (using password: YES)"), {
    code: "ER_ACCESS_DENIED_ERROR",
    errno: 1045,
  });
  const mysql = dbError(denied, ctx("pw-unused"));
  assert.doesNotMatch(mysql.message, /pg_hba/);
  assert.match(mysql.message, /\(using password: YES\)\. Check the user and password.*host part/);
  const pg = dbError(Object.assign(new Error('password authentication failed for user "bioapi"'), { code: "28P01" }), {
    ...ctx("pw-unused"),
    engine: "postgres",
  });
  assert.match(pg.message, /for user "bioapi"\. Check the user and password.*pg_hba\.conf/);
  const gone = dbError(Object.assign(new Error('relation "att_log" does not exist'), { code: "42P01" }), ctx("x"));
  assert.match(gone.message, /does not exist\. Check the table/);
  assert.doesNotMatch(gone.message, /\.\./);
});
