import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type AdmsServer, startAdmsServer } from "../../../cloud/receivers/adms-server.ts";
import { waitFor } from "../../../test/helpers/wait-for.ts";
import { type AdmsRelaySinkConfig, admsRelaySinkSchema } from "../../config/sink-schema.ts";
import { type Clock, systemClock } from "../../core/clock.ts";
import { silentLogger } from "../../core/logger.ts";
import type { CursorValue, OutboxEntry } from "../../store/store.ts";
import type { Sink, SinkMemory, SinkOutcome } from "../sink.ts";
import { checkAdmsRelay } from "./adms-relay-check.ts";
import { AdmsRelaySink } from "./adms-relay-sink.ts";
import { parseAdmsOptions, parseCommands } from "./adms-wire.ts";

let server: AdmsServer;
before(async () => {
  server = await startAdmsServer();
});
after(async () => {
  await server.close();
});

function memoryOf(): SinkMemory & { readonly map: Map<string, CursorValue> } {
  const map = new Map<string, CursorValue>();
  return { map, get: (k) => map.get(k), put: (k, v) => void map.set(k, v) };
}

function config(over: Record<string, unknown> = {}): AdmsRelaySinkConfig {
  return admsRelaySinkSchema.parse({ id: "adms", kind: "adms-relay", url: server.url, ...over });
}

function sinkOf(
  c: AdmsRelaySinkConfig,
  memory: SinkMemory = memoryOf(),
  clock: Clock = systemClock,
  timeoutMs = 2000,
): AdmsRelaySink {
  return new AdmsRelaySink(c, { clock, logger: silentLogger, memory, timeoutMs: () => timeoutMs });
}

interface PunchOver {
  readonly stateCode?: number;
  readonly verifyCode?: number | null;
  readonly workCode?: string;
}

let seq = 0;
function entry(serial: string, userId: string, time: string, over: PunchOver = {}): OutboxEntry {
  seq += 1;
  const stateCode = over.stateCode ?? 0;
  const id = `${serial}-${userId}-${time}-${stateCode}`;
  const punch = {
    id,
    deviceSerial: serial,
    userId,
    time,
    state: "checkIn",
    stateCode,
    verify: "fingerprint",
    verifyCode: over.verifyCode === undefined ? 1 : over.verifyCode,
    ...(over.workCode ? { workCode: over.workCode } : {}),
    source: "zk",
    collectedAt: "2024-09-17T09:00:00Z",
  };
  return { seq, id, sourceId: "src", body: JSON.stringify(punch), enqueuedAt: 0, attempts: 0 };
}

const never = () => new AbortController().signal;

async function settle(sink: Sink, batch: readonly OutboxEntry[], rounds = 20) {
  let pending = [...batch];
  const acked: string[] = [];
  const outcomes: SinkOutcome[] = [];
  for (let i = 0; i < rounds && pending.length > 0; i++) {
    const outcome = await sink.send(pending, never());
    outcomes.push(outcome);
    if (outcome.kind === "delivered") {
      acked.push(...outcome.acked);
      const done = new Set([...outcome.acked, ...outcome.rejected.map((r) => r.id)]);
      pending = pending.filter((e) => !done.has(e.id));
    } else await new Promise((r) => setTimeout(r, 20));
  }
  return { acked, outcomes, pending };
}

const requestsOf = (sn: string) => server.requests.filter((r) => r.query.SN === sn);

test("the handshake comes before the first upload, and the ATTLOG lines are exact", async () => {
  const sink = sinkOf(config());
  const batch = [
    entry("A1", "1", "2024-09-17T08:00:00+03:00"),
    entry("A1", "22", "2024-09-17T08:01:02.5+03:00", { stateCode: 1, verifyCode: 15, workCode: "7" }),
    entry("A1", "3", "2024-09-17T08:02:00+03:00", { stateCode: -1, verifyCode: null }),
    entry("A2", "1", "2024-09-17T08:00:00-04:00"),
  ];
  const outcome = await sink.send(batch, never());
  assert.deepEqual(outcome, { kind: "delivered", acked: batch.map((e) => e.id), rejected: [] });
  const a1 = requestsOf("A1");
  assert.deepEqual(
    a1.map((r) => [r.method, r.path, r.query.options ?? r.query.table]),
    [
      ["GET", "/iclock/cdata", "all"],
      ["POST", "/iclock/cdata", "ATTLOG"],
    ],
  );
  assert.equal(a1[0]?.query.pushver, "2.4.1");
  assert.match(a1[1]?.query.Stamp ?? "", /^\d+$/);
  assert.equal(
    a1[1]?.body,
    "1\t2024-09-17 08:00:00\t0\t1\t0\t0\t0\n" +
      "22\t2024-09-17 08:01:02\t1\t15\t7\t0\t0\n" +
      "3\t2024-09-17 08:02:00\t255\t0\t0\t0\t0\n",
  );
  assert.equal(requestsOf("A2")[1]?.body, "1\t2024-09-17 08:00:00\t0\t1\t0\t0\t0\n");

  await sink.send([entry("A1", "1", "2024-09-17T12:00:00+03:00")], never());
  assert.deepEqual(
    requestsOf("A1").map((r) => r.query.options ?? r.query.table),
    ["all", "ATTLOG", "ATTLOG"],
    "one handshake per run",
  );
});

test("stamps and serials live in the sink's memory: a new sink continues them", async () => {
  const memory = memoryOf();
  const first = sinkOf(config(), memory);
  await first.send(
    [entry("B1", "1", "2024-09-18T08:00:00+03:00"), entry("B2", "1", "2024-09-18T08:00:00+03:00")],
    never(),
  );
  const saved = memory.map.get("stamp:B1") as { stamp: number; serverStamp: string };
  assert.equal(server.stamp("B1"), String(saved.stamp));
  assert.deepEqual(memory.map.get("serials"), ["B1", "B2"]);

  // A clock far behind: the stamp still moves forward from what was kept.
  const restarted = sinkOf(config(), memory, { now: () => 1000 });
  await restarted.send([entry("B1", "2", "2024-09-18T08:05:00+03:00")], never());
  const posts = requestsOf("B1").filter((r) => r.method === "POST");
  assert.equal(posts.at(-1)?.query.Stamp, String(saved.stamp + 1));
  const handshakes = requestsOf("B1").filter((r) => r.query.options === "all");
  assert.equal(handshakes.length, 2, "the new run handshakes again");
  assert.deepEqual(memory.map.get("stamp:B1"), { stamp: saved.stamp + 1, serverStamp: String(saved.stamp) });
});

test("through 500s, a lost acknowledgement, a slow server and a down one, each punch is held exactly once", async () => {
  const sink = sinkOf(config(), memoryOf(), systemClock, 300);
  const batch = [
    entry("C1", "1", "2024-09-19T08:00:00+03:00"),
    entry("C1", "2", "2024-09-19T08:00:00+03:00"),
    entry("C2", "1", "2024-09-19T08:00:00+03:00"),
  ];
  await sink.handshake("C1", never());
  server.failNext(1, 500);
  const failed = await sink.send(batch, never());
  assert.ok(failed.kind === "failed" && !failed.lostConnectivity && failed.error.code === "SINK_UNAVAILABLE");
  assert.equal(requestsOf("C2").length, 0, "a failing server is not asked again for the next serial");

  server.failAfterCommit(1);
  server.slowNext(1, 1000);
  await server.stop();
  const down = await sink.send(batch, never());
  assert.ok(down.kind === "failed" && down.lostConnectivity);
  await server.listen();

  const result = await settle(sink, batch);
  assert.deepEqual(result.pending, []);
  assert.ok(
    result.outcomes.some((o) => o.kind === "failed" && o.lostConnectivity),
    "the slow one timed out",
  );
  const held = server.rows.filter((r) => r.time.startsWith("2024-09-19"));
  assert.deepEqual(held.map((r) => `${r.sn}/${r.pin}`).sort(), ["C1/1", "C1/2", "C2/1"]);
  const c1 = requestsOf("C1").map((r) => r.query.options ?? r.query.table);
  assert.ok(c1.lastIndexOf("all") > 1, "after losing the server the terminal handshakes again");
});

test("OK: n acknowledges the first n lines only; OK: 0 acknowledges none and says so", async () => {
  const sink = sinkOf(config());
  const batch = ["1", "2", "3", "4"].map((u) => entry("D1", u, "2024-09-20T08:00:00+03:00"));
  server.shortNext(1, 2);
  const short = await sink.send(batch, never());
  assert.deepEqual(short, { kind: "delivered", acked: batch.slice(0, 2).map((e) => e.id), rejected: [] });

  server.shortNext(1, 0);
  const none = await sink.send(batch.slice(2), never());
  assert.ok(none.kind === "failed" && none.error.code === "SINK_REJECTED");
  assert.match(none.error.message, /took none of 2 lines of terminal D1 \(200: OK: 0\)/);

  const rest = await sink.send(batch.slice(2), never());
  assert.deepEqual(rest, { kind: "delivered", acked: batch.slice(2).map((e) => e.id), rejected: [] });
  assert.equal(server.rows.filter((r) => r.sn === "D1").length, 4);
});

test("heartbeats for every remembered terminal; every command is answered, CHECK honoured, the rest refused", async () => {
  const memory = memoryOf();
  await sinkOf(config(), memory).send(
    [entry("E1", "1", "2024-09-21T08:00:00+03:00"), entry("E2", "1", "2024-09-21T08:00:00+03:00")],
    never(),
  );
  const info = server.queueCommand("E1", "INFO");
  const query = server.queueCommand(
    "E1",
    "DATA QUERY ATTLOG StartTime=2024-09-01 00:00:00\tEndTime=2024-09-02 00:00:00",
  );
  const clear = server.queueCommand("E2", "CLEAR LOG");
  const check = server.queueCommand("E2", "CHECK");

  // A restarted connector: it knows the serials from memory alone.
  const sink = sinkOf({ ...config(), heartbeatIntervalMs: 50 }, memory);
  const stop = new AbortController();
  const running = sink.run(stop.signal);
  try {
    await waitFor("four command results", () => server.results.filter((r) => r.sn.startsWith("E")).length >= 4);
    await waitFor(
      "a second round of heartbeats",
      () => requestsOf("E2").filter((r) => r.path === "/iclock/getrequest").length >= 2,
    );
  } finally {
    stop.abort();
    await running;
  }
  assert.deepEqual(
    server.results.filter((r) => r.sn.startsWith("E")).sort((a, b) => a.id.localeCompare(b.id)),
    [
      { sn: "E1", id: info, returnCode: "-1002", cmd: "INFO" },
      { sn: "E1", id: query, returnCode: "-1002", cmd: "DATA" },
      { sn: "E2", id: clear, returnCode: "-1002", cmd: "CLEAR" },
      { sn: "E2", id: check, returnCode: "0", cmd: "CHECK" },
    ],
  );
  assert.ok(requestsOf("E1").some((r) => r.path === "/iclock/getrequest"));
  const details = sink.details();
  assert.equal(details.commandsRefused, 3);
  assert.equal(details.commandsHonoured, 1);
  assert.equal(details.serials, 2);
});

test("a command result that cannot be posted is posted on a later heartbeat", async () => {
  const memory = memoryOf();
  const sink = sinkOf({ ...config(), heartbeatIntervalMs: 50 }, memory);
  await sink.send([entry("F1", "1", "2024-09-22T08:00:00+03:00")], never());
  const id = server.queueCommand("F1", "REBOOT");
  server.failResultsNext(1);
  await sink.heartbeat(never());
  assert.equal(server.results.filter((r) => r.id === id).length, 0);
  assert.equal(sink.details().pendingResults, 1);
  assert.match(String(sink.details().lastError), /failed the command result of terminal F1 \(500/);
  await sink.heartbeat(never());
  assert.deepEqual(
    server.results.filter((r) => r.id === id),
    [{ sn: "F1", id, returnCode: "-1002", cmd: "REBOOT" }],
  );
  assert.equal(sink.details().pendingResults, 0);
});

test("serials: other terminals are not this sink's, count as delivered and are never announced", async () => {
  const memory = memoryOf();
  const sink = sinkOf(config({ serials: ["G1"] }), memory);
  const batch = [entry("G1", "1", "2024-09-23T08:00:00+03:00"), entry("G9", "1", "2024-09-23T08:00:00+03:00")];
  const outcome = await sink.send(batch, never());
  assert.deepEqual(outcome, { kind: "delivered", acked: [batch[1]?.id, batch[0]?.id], rejected: [] });
  assert.equal(requestsOf("G9").length, 0);
  assert.deepEqual(memory.map.get("serials"), ["G1"]);
  assert.equal(server.rows.filter((r) => r.sn === "G1").length, 1);
});

test("a punch no ATTLOG line can carry goes to quarantine", async () => {
  const outcome = await sinkOf(config()).send([entry("H1", "a\tb", "2024-09-24T08:00:00+03:00")], never());
  assert.ok(outcome.kind === "delivered" && outcome.rejected.length === 1);
  assert.match(outcome.rejected[0]?.reason ?? "", /tab or line break/);
  assert.equal(requestsOf("H1").length, 0);
});

test("doctor: the handshake of the first serial and what the server answered", async () => {
  const signal = never();
  const ok = await checkAdmsRelay({ config: config({ serials: ["J1"] }) }, signal);
  assert.deepEqual(
    ok.map((f) => [f.check, f.status]),
    [
      ["reachable", "ok"],
      ["handshake", "ok"],
    ],
  );
  assert.match(ok[1]?.detail ?? "", /terminal J1: ATTLOGStamp=0, Delay=10, TransInterval=1/);
  assert.equal(server.requests.filter((r) => r.query.SN === "J1" && r.method === "POST").length, 0);

  const noSerials = await checkAdmsRelay({ config: config() }, signal);
  assert.deepEqual(
    noSerials.map((f) => [f.check, f.status]),
    [
      ["reachable", "ok"],
      ["handshake", "warn"],
    ],
  );

  await server.stop();
  try {
    const down = await checkAdmsRelay({ config: config({ serials: ["J1"], requestTimeoutMs: 500 }) }, signal);
    assert.deepEqual(
      down.map((f) => [f.check, f.status]),
      [["reachable", "fail"]],
    );
  } finally {
    await server.listen();
  }
});

test("wire: options split at the first =, CRLF and padding tolerated; commands keep their colons", () => {
  assert.deepEqual(
    parseAdmsOptions(
      "GET OPTION FROM: X1\r\nATTLOGStamp=9999 \r\n Delay = 30\r\nPushOptions=a=b,c\r\nEncrypt=\r\nOK\r\n",
    ),
    { ATTLOGStamp: "9999", Delay: "30", PushOptions: "a=b,c", Encrypt: "" },
  );
  assert.deepEqual(parseCommands("C:12:INFO\nC:1234567890123:SET OPTION Time=12:00\r\n"), [
    { id: "12", command: "INFO" },
    { id: "1234567890123", command: "SET OPTION Time=12:00" },
  ]);
  assert.deepEqual(parseCommands("OK"), []);
});
