import assert from "node:assert/strict";
import { lstat, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { EnvelopeSecretStore } from "./envelope-secret-store.ts";
import { KeyFileProtector } from "./key-file-protector.ts";

/** The temp names the writers used before the shared helper: fixed, or the writer's pid. Both guessable. */
const predictable = (path: string) => [`${path}.tmp`, `${path}.${process.pid}.tmp`];

test("a 0644 file or a symlink at a predictable temp name leaves secrets.json 0600, with nothing written through the link", {
  skip: process.platform === "win32",
}, async () => {
  await using dir = await tempDir();
  const secrets = join(dir.path, "secrets.json");
  const [fixed, byPid] = predictable(secrets) as [string, string];
  const victim = join(dir.path, "elsewhere.txt");
  const dangling = join(dir.path, "created-through-link.txt");
  const store = new EnvelopeSecretStore(secrets, new KeyFileProtector(join(dir.path, "master.key")));

  // The first write creates secrets.json, the second replaces it: both must hold.
  for (const [value, plantFile, plantLink, linkTo] of [
    ["s3cret-value-1", fixed, byPid, victim],
    ["s3cret-value-2", byPid, fixed, dangling],
  ] as const) {
    // Another user's leftovers: a world-readable file at one name, a link to a file of theirs at the other.
    await writeFile(plantFile, "planted\n", { mode: 0o644 });
    await writeFile(victim, "theirs\n", { mode: 0o644 });
    await symlink(linkTo, plantLink);

    await store.set("node-secret", Buffer.from(value));

    assert.equal((await lstat(secrets)).isFile(), true);
    assert.equal((await stat(secrets)).mode & 0o777, 0o600, "secrets.json is the owner's only");
    assert.equal(await readFile(victim, "utf8"), "theirs\n", "nothing written through the link");
    assert.equal((await stat(victim)).mode & 0o777, 0o644, "the link's target keeps its mode");
    await assert.rejects(stat(dangling), { code: "ENOENT" }, "nothing created through a dangling link");
    assert.equal(await readFile(plantFile, "utf8"), "planted\n", "the planted file is neither used nor renamed");
    assert.equal((await lstat(plantLink)).isSymbolicLink(), true);
    assert.equal((await store.get("node-secret"))?.toString("utf8"), value);
    const names = await readdir(dir.path);
    assert.deepEqual(
      names.filter((n) => n.endsWith(".tmp") && !predictable(secrets).includes(join(dir.path, n))),
      [],
      "no temp file of ours left",
    );
    for (const n of [plantFile, plantLink]) await rm(n, { force: true });
  }
});
