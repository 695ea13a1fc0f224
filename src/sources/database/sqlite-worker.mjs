// Runs a customer's SQLite database in a worker thread. node:sqlite is synchronous: on the main thread a slow
// query would stall every other source, the shipper and the status endpoint. Plain JavaScript on purpose: a .ts
// worker would load its own copy of the TypeScript stripper (about 20 MB per thread).
// Messages: in { id, sql, params }; out { id, ok: true, rows } | { id, ok: false, message }; id 0 reports the open.
import { DatabaseSync } from "node:sqlite";
import { parentPort, workerData } from "node:worker_threads";

const port = parentPort;
if (port) {
  const { path, busyTimeoutMs } = workerData;
  let db;
  let openError;
  try {
    db = new DatabaseSync(path, { readOnly: true, timeout: busyTimeoutMs });
  } catch (error) {
    openError = error.message;
  }
  port.postMessage(openError === undefined ? { id: 0, ok: true, rows: [] } : { id: 0, ok: false, message: openError });
  port.on("message", (request) => {
    try {
      if (!db) throw new Error(openError ?? "database not open");
      port.postMessage({ id: request.id, ok: true, rows: db.prepare(request.sql).all(...request.params) });
    } catch (error) {
      port.postMessage({ id: request.id, ok: false, message: error.message });
    }
  });
}
