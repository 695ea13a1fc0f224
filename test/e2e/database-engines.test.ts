import assert from "node:assert/strict";
import { test } from "node:test";
import { punchId } from "../../src/core/punch.ts";
import { e2e, fastConfig } from "../helpers/e2e-harness.ts";
import { scratch } from "../helpers/sql-servers.ts";
import { waitFor } from "../helpers/wait-for.ts";

test("PostgreSQL BioTime → connector → reference cloud: out-of-order commits, every committed punch once", async (t) => {
  await using s = await scratch("postgres");
  if (!s) return t.skip("postgres absent");
  await s.createBiotime();
  await using h = await e2e({
    config: (dbPath) => {
      const base = fastConfig(dbPath);
      return {
        ...base,
        sources: [
          {
            id: "biotime",
            kind: "database",
            preset: "biotime",
            pollIntervalMs: 100,
            timezone: "Asia/Kolkata",
            connection: s.connection,
            batchSize: 50,
            lookbackRows: 300,
          },
        ],
      };
    },
  });
  await s.insertBiotime(Array.from({ length: 400 }, (_, i) => ({ sn: `T${i % 4}`, pin: `b${i}`, time: at(i) })));
  await h.startConnector();
  const writers = await Promise.all(Array.from({ length: 3 }, () => s.writer()));
  const expected = new Set<string>();
  for (let i = 0; i < 400; i++) expected.add(punchId(`T${i % 4}`, `b${i}`, local(i), 0));
  await Promise.all(
    writers.map(async (w, wi) => {
      for (let tx = 0; tx < 20; tx++) {
        const n = 1000 + wi * 100 + tx;
        await w.exec("BEGIN");
        await s.insertBiotime([{ sn: `T${n % 4}`, pin: `w${n}`, time: at(n) }], w);
        await new Promise((r) => setTimeout(r, Math.random() * 60));
        await w.exec("COMMIT");
        expected.add(punchId(`T${n % 4}`, `w${n}`, local(n), 0));
      }
    }),
  );
  await Promise.all(writers.map((w) => w.close()));
  await waitFor(`${expected.size} punches in the cloud`, () => h.cloud.stats(h.nodeId).total === expected.size, 30_000);
  await new Promise((r) => setTimeout(r, 300));
  const ids = h.cloudIds();
  assert.equal(ids.size, expected.size);
  assert.deepEqual(new Set(ids.keys()), expected);
  assert.ok(h.cloud.punches(h.nodeId, 10_000).every((p) => p.idConsistent));
  assert.equal(h.connector().status().sources[0]?.lastError ?? null, null);
});

function local(i: number): string {
  return new Date(Date.UTC(2026, 10, 26, 8) + i * 1000).toISOString().slice(0, 19);
}

function at(i: number): string {
  return `${local(i).replace("T", " ")}+05:30`;
}
