import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { after, before, test } from "node:test";
import { TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { warningsLogger } from "../../../test/helpers/run-source.ts";
import { PG_URL, scratch } from "../../../test/helpers/sql-servers.ts";
import { tempDir } from "../../../test/helpers/temp-dir.ts";
import { type DatabaseSourceConfig, databaseSourceSchema } from "../../config/config-schema.ts";
import { systemClock } from "../../core/clock.ts";
import { BioError } from "../../core/errors.ts";
import type { SourceContext } from "../source.ts";
import { sourceFactory } from "../source-kinds.ts";
import { openSqlClient } from "./open-client.ts";

/**
 * TLS modes against the machine's real PostgreSQL and MariaDB, which run without TLS (`SHOW ssl` is off,
 * `have_ssl` DISABLED), and against small stand-ins on loopback for what they cannot show: a PostgreSQL front that
 * answers the SSLRequest with 'S' and terminates TLS in front of the real server, a front that says 'S' and then
 * breaks the handshake, and a MySQL greeting that advertises CLIENT_SSL.
 */

let cert = "";
let key = "";
let dir: (AsyncDisposable & { path: string }) | undefined;

before(async () => {
  dir = await tempDir("bioapi-tls-");
  // Self-signed, so the certificate is its own CA: `ca: cert` verifies it, no `ca` does not.
  await promisify(execFile)(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"],
      ...["-subj", "/CN=db.test", "-addext", "subjectAltName=DNS:db.test,IP:127.0.0.1"],
      ...["-keyout", join(dir.path, "key.pem"), "-out", join(dir.path, "cert.pem")],
    ],
    { timeout: 30_000 },
  );
  cert = await readFile(join(dir.path, "cert.pem"), "utf8");
  key = await readFile(join(dir.path, "key.pem"), "utf8");
});
after(async () => {
  await dir?.[Symbol.asyncDispose]();
});

const pgTarget = new URL(PG_URL);

function source(connection: Record<string, unknown>): DatabaseSourceConfig {
  return databaseSourceSchema.parse({
    id: "db",
    kind: "database",
    preset: "biotime",
    connection: { connectTimeoutMs: 5000, ...connection },
  });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

async function closeStandIn(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Collects bytes from a socket until `n` are there. */
function firstBytes(socket: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < n) return;
      socket.off("data", onData);
      socket.pause();
      resolve(got);
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.once("close", () => reject(new Error("closed early")));
  });
}

const SSL_REQUEST = 80877103;

/**
 * A PostgreSQL front on loopback. "tls": answers the SSLRequest with 'S', terminates TLS and relays to the real
 * server. "break": answers 'S', then closes before any handshake. Counts what arrives: TLS sessions, and plain
 * startup messages (which carry the user, and are followed by the password).
 */
async function pgFront(behaviour: "tls" | "break") {
  const seen = { tls: 0, plainStartups: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    firstBytes(socket, 8)
      .then((head) => {
        const upstream = tcpConnect(Number(pgTarget.port || 5432), pgTarget.hostname);
        sockets.add(upstream);
        upstream.on("error", () => socket.destroy());
        if (head.readInt32BE(4) !== SSL_REQUEST) {
          seen.plainStartups++;
          upstream.write(head);
          socket.pipe(upstream).pipe(socket);
          socket.resume();
          return;
        }
        socket.write("S");
        if (behaviour === "break") {
          upstream.destroy();
          socket.destroy();
          return;
        }
        const secure = new TLSSocket(socket, { isServer: true, key, cert });
        secure.on("error", () => upstream.destroy());
        secure.once("secure", () => seen.tls++);
        secure.pipe(upstream).pipe(secure);
        socket.resume();
      })
      .catch(() => socket.destroy());
  });
  return { port: await listen(server), seen, [Symbol.asyncDispose]: () => closeStandIn(server, sockets) };
}

function mysqlPacket(seq: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUIntLE(payload.length, 0, 3);
  head[3] = seq;
  return Buffer.concat([head, payload]);
}

const CLIENT_SSL = 0x800;

/**
 * A MySQL server's first words (HandshakeV10) with CLIENT_SSL set, then, for "tls", a TLS session in which it
 * reads the client's HandshakeResponse (whose user name it records) and refuses it with an ERR; for "break", it
 * closes right after the client's SSLRequest. Counts handshake responses that arrive in the clear.
 */
async function mysqlFront(behaviour: "tls" | "break") {
  const seen = { tlsUsers: [] as string[], plainResponses: 0, connections: 0 };
  const sockets = new Set<Socket>();
  const caps = 0x1 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000 | 0x200000 | CLIENT_SSL; // long pw, db, 4.1, txn, secure, plugin
  const greeting = Buffer.concat([
    Buffer.from([10]),
    Buffer.from("10.11.0-stand-in\0"),
    Buffer.from([7, 0, 0, 0]),
    Buffer.from("abcdefgh"),
    Buffer.from([0, caps & 0xff, (caps >> 8) & 0xff, 33, 2, 0, (caps >> 16) & 0xff, (caps >> 24) & 0xff, 21]),
    Buffer.alloc(10),
    Buffer.from("ijklmnopqrst\0"),
    Buffer.from("mysql_native_password\0"),
  ]);
  const refuse = mysqlPacket(
    3,
    Buffer.concat([Buffer.from([0xff, 0x15, 0x04]), Buffer.from("#28000stand-in refuses every login")]),
  );
  const server = createServer((socket) => {
    seen.connections++;
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.write(mysqlPacket(0, greeting));
    // The SSLRequest is a 32-byte payload; a plain HandshakeResponse is longer (it holds the user name).
    firstBytes(socket, 4)
      .then((head) => {
        const length = head.readUIntLE(0, 3);
        if (length !== 32) {
          seen.plainResponses++;
          socket.destroy();
          return;
        }
        if (behaviour === "break") {
          socket.destroy();
          return;
        }
        // The client sends its TLS hello right behind the SSLRequest, maybe in the same chunk: hand TLS a stream
        // that starts with those bytes (a TLSSocket on the raw socket would read past them).
        const relay = new Duplex({
          read() {},
          write(chunk, _encoding, done) {
            socket.write(chunk, done);
          },
          final(done) {
            socket.end(done);
          },
        });
        relay.push(head.subarray(4 + 32));
        socket.on("data", (chunk) => relay.push(chunk));
        socket.resume();
        const secure = new TLSSocket(relay, { isServer: true, key, cert });
        secure.on("error", () => undefined);
        secure.once("data", (packet: Buffer) => {
          const payload = packet.subarray(4);
          const end = payload.indexOf(0, 32);
          seen.tlsUsers.push(payload.subarray(32, end).toString());
          secure.write(refuse);
          secure.end();
        });
      })
      .catch(() => socket.destroy());
  });
  return { port: await listen(server), seen, [Symbol.asyncDispose]: () => closeStandIn(server, sockets) };
}

async function refusal(config: DatabaseSourceConfig): Promise<BioError> {
  try {
    const client = await openSqlClient(config, AbortSignal.timeout(20_000));
    await client.close();
  } catch (error) {
    assert.ok(error instanceof BioError, String(error));
    return error;
  }
  assert.fail(`${config.connection.engine} connected`);
}

for (const engine of ["postgres", "mysql"] as const) {
  test(`${engine} without TLS: prefer and off connect in the clear, require and verify refuse with the fix`, async (t) => {
    await using s = await scratch(engine);
    if (!s) return t.skip(`${engine} absent`);
    for (const mode of ["prefer", "off", undefined]) {
      const client = await openSqlClient(
        source({ ...s.connection, ...(mode ? { tls: mode } : {}) }),
        AbortSignal.timeout(20_000),
      );
      try {
        assert.deepEqual(client.wire, { tls: false, verified: false }, `${mode ?? "default"}`);
        assert.equal((await client.tables({ signal: AbortSignal.timeout(10_000), timeoutMs: 5000 })).length >= 0, true);
      } finally {
        await client.close();
      }
    }
    for (const mode of ["require", "verify"]) {
      const error = await refusal(source({ ...s.connection, tls: mode }));
      assert.equal(error.code, "DB_CONNECT");
      assert.match(error.message, /offers no TLS, and the connection's tls requires it/);
      assert.match(error.hint ?? "", /Enable TLS \(ssl\) on the database server/);
    }
  });
}

test("postgres: prefer takes TLS when the server offers it; verify checks the certificate and its name", async (t) => {
  await using s = await scratch("postgres");
  if (!s) return t.skip("postgres absent");
  await using front = await pgFront("tls");
  const at = { ...s.connection, host: "127.0.0.1", port: front.port };
  for (const tls of [
    "prefer",
    "require",
    { mode: "verify", ca: cert },
    { mode: "verify", ca: cert, serverName: "db.test" },
  ]) {
    const client = await openSqlClient(source({ ...at, tls }), AbortSignal.timeout(20_000));
    try {
      assert.equal(client.wire?.tls, true, JSON.stringify(tls));
      assert.equal(client.wire?.verified, typeof tls === "object");
      assert.ok((await client.tables({ signal: AbortSignal.timeout(10_000), timeoutMs: 5000 })).length >= 0);
    } finally {
      await client.close();
    }
  }
  assert.equal(front.seen.plainStartups, 0, "every session ran inside TLS");
  const before = front.seen.tls;
  for (const tls of [{ mode: "verify" }, { mode: "verify", ca: cert, serverName: "other.test" }]) {
    const error = await refusal(source({ ...at, tls }));
    assert.equal(error.code, "DB_CONNECT", error.message);
    assert.match(error.hint ?? "", /tls\.ca/);
  }
  assert.equal(front.seen.plainStartups, 0, "a refused certificate never leads to a plain retry");
  assert.equal(front.seen.tls, before, "no session was set up with a certificate that failed the check");
});

test("postgres: a TLS handshake that breaks after 'S' is an error under prefer, never a plain retry", async () => {
  await using front = await pgFront("break");
  const error = await refusal(
    source({
      engine: "postgres",
      host: "127.0.0.1",
      port: front.port,
      database: "test",
      user: "postgres",
      password: "pw",
      tls: "prefer",
    }),
  );
  assert.equal(error.code, "DB_CONNECT");
  assert.equal(front.seen.plainStartups, 0, "nothing (no user, no password) was sent in the clear");
});

test("mysql: prefer takes TLS when the greeting advertises CLIENT_SSL; the login goes inside TLS only", async () => {
  await using front = await mysqlFront("tls");
  const error = await refusal(
    source({
      engine: "mysql",
      host: "127.0.0.1",
      port: front.port,
      database: "test",
      user: "bioapi",
      password: "pw",
      tls: "prefer",
    }),
  );
  // The stand-in refuses every login: what matters is where the login arrived.
  assert.equal(error.code, "DB_AUTH", error.message);
  assert.deepEqual(front.seen.tlsUsers, ["bioapi"]);
  assert.equal(front.seen.plainResponses, 0);
  assert.equal(front.seen.connections, 1, "no second, plain attempt");
});

test("mysql: a TLS handshake that breaks after the SSLRequest is an error under prefer, never a plain retry", async () => {
  await using front = await mysqlFront("break");
  const error = await refusal(
    source({ engine: "mysql", host: "127.0.0.1", port: front.port, database: "test", user: "u", password: "pw" }),
  );
  assert.equal(error.code, "DB_CONNECT", error.message);
  assert.equal(front.seen.plainResponses, 0);
  assert.equal(front.seen.connections, 1, "no second, plain attempt");
});

test("a password sent without TLS to a non-loopback address is logged once per connector, not per start", async (t) => {
  await using s = await scratch("postgres");
  if (!s) return t.skip("postgres absent");
  await s.createBiotime();
  // Linux delivers a connection to 0.0.0.0 to the local server, yet it is not a loopback address by name: the
  // connector treats it as the network, which is what this test needs from the real server.
  const config = source({ ...s.connection, host: "0.0.0.0", password: "pw-never-logged" });
  const make = sourceFactory();
  const logger = warningsLogger();
  // Two starts of the same source, as the supervisor makes them after a failure: a new source object each time.
  for (let start = 0; start < 2; start++) {
    const controller = new AbortController();
    let polled: () => void = () => undefined;
    const firstPoll = new Promise<void>((resolve) => (polled = resolve));
    const ctx: SourceContext = {
      sourceId: config.id,
      cursors: new Map(),
      signal: controller.signal,
      logger,
      clock: systemClock,
      emit: async () => ({ enqueued: 0, duplicates: 0, quarantined: 0, quarantinedKinds: {} }),
      waitUntilActive: async () => undefined,
      progress: (p) => {
        if (p.lastPollAt !== undefined) polled();
      },
    };
    const running = make(config).run(ctx);
    await Promise.race([firstPoll, running]);
    controller.abort();
    await running.catch(() => undefined);
  }
  const warnings = logger.warnings.filter((w) => /crosses the network without TLS/.test(w));
  assert.equal(warnings.length, 1, logger.warnings.join("\n"));
  assert.match(warnings[0] ?? "", /postgres 0\.0\.0\.0:\d+\/test/);
  // The raw message, before any redactor: the text itself never holds the password.
  assert.ok(!logger.warnings.join("\n").includes("pw-never-logged"));
});
