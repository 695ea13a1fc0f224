import { DatabaseSync } from "node:sqlite";

/** A customer-style attendance table in a real SQLite file, written by a separate connection like vendor software. */
export class AttendanceDb {
  readonly path: string;
  readonly #db: DatabaseSync;

  constructor(path: string) {
    this.path = path;
    this.#db = new DatabaseSync(path, { timeout: 5000 });
    this.#db.exec("PRAGMA journal_mode = WAL");
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS att_log (id INTEGER PRIMARY KEY, sn TEXT, pin TEXT, punch_time TEXT, status INTEGER, verify INTEGER)",
    );
    this.#db.exec("CREATE INDEX IF NOT EXISTS att_log_sn_id ON att_log (sn, id)");
  }

  insert(
    rows: ReadonlyArray<{
      id?: number;
      sn: string;
      pin: string | null;
      time: string;
      status?: number;
      verify?: number;
    }>,
  ): void {
    const stmt = this.#db.prepare(
      "INSERT INTO att_log (id, sn, pin, punch_time, status, verify) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.#db.exec("BEGIN");
    for (const r of rows) stmt.run(r.id ?? null, r.sn, r.pin, r.time, r.status ?? 0, r.verify ?? 1);
    this.#db.exec("COMMIT");
  }

  /** `count` punches spread over `serials`, times one second apart from `start`. */
  insertMany(count: number, serials: readonly string[], startMs = Date.UTC(2026, 10, 26, 6), firstUser = 1): void {
    const rows = [];
    for (let i = 0; i < count; i++) {
      const time = new Date(startMs + i * 1000).toISOString().slice(0, 19).replace("T", " ");
      rows.push({ sn: serials[i % serials.length] as string, pin: String(firstUser + (i % 500)), time, status: i % 2 });
    }
    this.insert(rows);
  }

  count(): number {
    return (this.#db.prepare("SELECT count(*) AS n FROM att_log").get() as { n: number }).n;
  }

  close(): void {
    this.#db.close();
  }
}

export const ATT_LOG_COLUMNS = {
  id: "id",
  deviceSerial: "sn",
  userId: "pin",
  time: "punch_time",
  state: "status",
  verify: "verify",
} as const;
