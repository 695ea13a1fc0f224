import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { dataDirLayout } from "../../src/app/data-dir.ts";
import { saveEnrollment } from "../../src/secrets/enrollment.ts";
import { openSecretStore } from "../../src/secrets/open-secret-store.ts";
import { e2e, fastConfig, PATIENT_SHIPPER } from "../helpers/e2e-harness.ts";
import { waitFor } from "../helpers/wait-for.ts";

type Mode = "forward" | "redirect" | "forge";

/**
 * What sits between a site and its cloud: a TLS-inspecting proxy, a captive portal. It forwards to the real cloud,
 * or answers POST punches itself: with a redirect elsewhere, or with "all accepted" under a MAC it cannot know.
 */
class Middlebox {
  mode: Mode = "forward";
  readonly answered: Record<Mode, number> = { forward: 0, redirect: 0, forge: 0 };
  readonly #server: Server;
  readonly #cloudUrl: string;
  readonly #elsewhere: string;

  private constructor(cloudUrl: string, elsewhere: string) {
    this.#cloudUrl = cloudUrl;
    this.#elsewhere = elsewhere;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  static async start(cloudUrl: string, elsewhere: string): Promise<Middlebox & { url: string }> {
    const box = new Middlebox(cloudUrl, elsewhere);
    return Object.assign(box, { url: await listen(box.#server) });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const mode = req.url?.endsWith("/punches") ? this.mode : "forward";
    this.answered[mode]++;
    if (mode === "redirect") {
      res.writeHead(307, { location: `${this.#elsewhere}${req.url}` }).end();
      return;
    }
    if (mode === "forge") {
      const json = req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body;
      const { punches } = JSON.parse(json.toString("utf8")) as { punches: { id: string }[] };
      res.writeHead(200, {
        "content-type": "application/json",
        "x-cams-protocol": "2",
        "x-cams-response-mac": randomBytes(32).toString("base64url"),
      });
      res.end(JSON.stringify({ results: punches.map((p) => ({ id: p.id, status: "accepted" })) }));
      return;
    }
    const headers = Object.fromEntries(
      Object.entries(req.headers).filter(([k]) => !["host", "connection", "content-length"].includes(k)),
    ) as Record<string, string>;
    const answer = await fetch(`${this.#cloudUrl}${req.url}`, {
      method: req.method ?? "GET",
      headers,
      ...(body.length > 0 ? { body } : {}),
      redirect: "manual",
    }).catch(() => undefined);
    if (!answer) {
      res.destroy();
      return;
    }
    const out = Buffer.from(await answer.arrayBuffer());
    const pass = Object.fromEntries(
      [...answer.headers].filter(([k]) => !["content-length", "transfer-encoding", "connection"].includes(k)),
    );
    res.writeHead(answer.status, pass).end(out);
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((done) => this.#server.close(() => done()));
  }
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test("a redirecting proxy and one forging 'accepted': nothing acknowledged; delivered once the real cloud answers", async (t) => {
  // Counts deliveries: a batch the proxied cloud answered late on a busy machine must not be sent again.
  await using h = await e2e({ config: (db) => fastConfig(db, { shipper: PATIENT_SHIPPER }) });
  let stolen = 0;
  const elsewhere = createServer((_req, res) => {
    stolen++;
    res.end('{"results":[]}');
  });
  const elsewhereUrl = await listen(elsewhere);
  const box = await Middlebox.start(h.cloud.url, elsewhereUrl);
  t.after(async () => {
    await box.close();
    elsewhere.closeAllConnections();
    elsewhere.close();
  });
  const layout = dataDirLayout(h.connectorDir);
  await saveEnrollment(openSecretStore(layout), { cloudUrl: box.url, nodeId: h.nodeId, nodeSecret: h.secret });

  box.mode = "redirect";
  h.db.insertMany(50, ["S1", "S2"]);
  await h.startConnector();
  const shipper = () => h.connector().status().shipper;
  await waitFor("two redirected batches", () => box.answered.redirect >= 2 && shipper().lastError);
  assert.equal(shipper().lastError?.code, "CLOUD_REDIRECT");
  assert.match(shipper().lastError?.message ?? "", new RegExp(`redirect to ${elsewhereUrl}/v1/nodes/`));
  assert.equal(stolen, 0, "the redirect target never saw the batch");

  box.mode = "forge";
  await waitFor("two forged answers", () => box.answered.forge >= 2 && shipper().lastError?.code !== "CLOUD_REDIRECT");
  assert.equal(shipper().lastError?.code, "CLOUD_UNAUTHENTICATED");
  const status = h.connector().status();
  assert.equal(status.shipper.delivered, 0, "nothing acknowledged");
  assert.equal(status.outbox.depth, 50, "every punch still waits");
  assert.equal(h.cloud.count(h.nodeId), 0);

  box.mode = "forward";
  await waitFor("50 delivered by the real cloud", () => h.connector().status().outbox.depth === 0);
  assert.equal(h.cloud.count(h.nodeId), 50);
  assert.deepEqual(
    [...h.cloudIds().values()].filter((n) => n !== 1),
    [],
    "each delivered once",
  );
  assert.equal(h.connector().status().shipper.delivered, 50);
});
