import assert from "node:assert/strict";
import { test } from "node:test";
import { nodesPage } from "./nodes-page.ts";

test("one malformed heartbeat does not take the nodes page down for the other nodes", () => {
  const now = Date.parse("2026-11-26T10:00:00Z");
  const row = (nodeId: string, status: unknown) => ({
    nodeId,
    createdAt: "2026-11-26T09:00:00Z",
    lastSeen: "2026-11-26T09:59:00Z",
    status,
    punches: 3,
  });
  const html = nodesPage(
    [
      row("odd-sources", { sources: "x" }),
      row("null-source", { sources: [null] }),
      row("not-an-object", 42),
      row("healthy", { sources: [{ id: "gate", kind: "zk", state: "running" }] }),
    ],
    now,
  );
  for (const id of ["odd-sources", "null-source", "not-an-object", "healthy"]) assert.match(html, new RegExp(id));
  assert.match(html, /data-source="gate"/);
});
