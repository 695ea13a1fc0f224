import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.ts";
import { parseConfig, type SourceConfig } from "../../src/config/config-schema.ts";
import { captureIo } from "../helpers/capture-io.ts";
import { sourceHarness } from "../helpers/run-source.ts";
import { type EngineName, type Scratch, scratch } from "../helpers/sql-servers.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** A login role of its own with no grant on the table, dropped afterwards. */
async function readerRole(s: Scratch): Promise<{ user: string; password: string; drop(): Promise<void> }> {
  const user = `bioapi_r_${randomBytes(4).toString("hex")}`;
  const password = `pw-${randomBytes(8).toString("hex")}`;
  if (s.engine === "postgres") {
    await s.exec(`CREATE ROLE ${user} LOGIN PASSWORD '${password}'`);
    return {
      user,
      password,
      drop: async () => {
        await s.exec(`DROP OWNED BY ${user}`);
        await s.exec(`DROP ROLE ${user}`);
      },
    };
  }
  await s.exec(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
  return { user, password, drop: () => s.exec(`DROP USER '${user}'@'%'`).then(() => undefined) };
}

for (const engine of ["postgres", "mysql"] as EngineName[]) {
  test(`${engine}: a reader without SELECT is told "not allowed" with the GRANT, in the worker's error and in doctor`, async (t) => {
    await using s = await scratch(engine);
    if (!s) return t.skip(`${engine} absent`);
    await s.createBiotime();
    await s.insertBiotime([{ sn: "CKJ1", pin: "7", time: "2026-11-26 08:00:00+05:30" }]);
    const role = await readerRole(s);
    try {
      await check(s, role);
    } finally {
      await role.drop();
    }
  });
}

async function check(s: Scratch, role: { user: string; password: string }): Promise<void> {
  {
    // MariaDB accepts a login from loopback as user@'%' only with the host spelled as an address.
    const connection = { ...s.connection, host: "127.0.0.1", user: role.user, password: role.password };
    const source = { id: "bt", kind: "database", preset: "biotime", timezone: "Asia/Kolkata", connection };

    await using dir = await tempDir();
    if (s.engine === "mysql") {
      // No grant at all in the database: MariaDB refuses the connection itself, and the grant is named there.
      const refused = sourceHarness(dir.path);
      try {
        await refused.run(
          (parseConfig({ schemaVersion: 1, sources: [source] }) as { config: { sources: SourceConfig[] } }).config
            .sources,
        );
        const error = await waitFor("the refusal", () => refused.supervisor.status()[0]?.lastError);
        assert.equal(error.code, "DB_PERMISSION", error.message);
        assert.match(error.message, new RegExp(`run: GRANT SELECT ON \`[^\`]+\`\\.\`TABLE\` TO '${role.user}'@'%'`));
      } finally {
        await refused[Symbol.asyncDispose]();
      }
      // A grant on the wrong table: the server now lets it in but hides the punch table from its catalog.
      await s.exec("CREATE TABLE decoy (id int)");
      await s.exec(`GRANT SELECT ON decoy TO '${role.user}'@'%'`);
    }
    const parsed = parseConfig({ schemaVersion: 1, sources: [source] });
    assert.ok(parsed.ok);
    const h = sourceHarness(dir.path);
    try {
      await h.run(parsed.config.sources as SourceConfig[]);
      const error = await waitFor("the worker's error", () => h.supervisor.status()[0]?.lastError);
      assert.equal(error.code, "DB_PERMISSION", error.message);
      assert.match(error.message, /Not allowed to read table .*iclock_transaction/);
      assert.match(error.message, /GRANT SELECT ON .*iclock_transaction.* TO /);
      assert.doesNotMatch(error.message, /not found|does not exist/);
      assert.ok(!error.message.includes(role.password));
    } finally {
      await h[Symbol.asyncDispose]();
    }

    const file = join(dir.path, "source.json");
    await writeFile(file, JSON.stringify(source));
    const io = captureIo();
    assert.equal(await main(["doctor", "--source-config", file, "--data-dir", dir.path], io), 1);
    const text = io.text();
    assert.match(text, /FAIL table iclock_transaction: Not allowed to read table/, text);
    const grants = /run: (GRANT .*;)/.exec(text)?.[1];
    assert.ok(grants, text);

    // The printed grant is the fix: run it as the administrator and doctor passes.
    for (const grant of grants.split(/;\s*/).filter(Boolean)) await s.exec(grant);
    const after = captureIo();
    assert.equal(await main(["doctor", "--source-config", file, "--data-dir", dir.path], after), 0, after.text());
    assert.match(after.text(), /iclock_transaction: 1 rows?, 1 devices?/);
  }
}
