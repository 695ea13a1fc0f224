import { DatabaseSync } from "node:sqlite";

/**
 * Plays the attendance software: a SQLite table that keeps receiving punches, written through its own connection
 * the way vendor software would.
 */
export class DemoAttendanceWriter {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #devices: readonly string[];
  readonly #insertedAt: number[] = [];
  #timer: NodeJS.Timeout | undefined;
  #user = 0;

  constructor(path: string, devices: readonly string[]) {
    this.path = path;
    this.#devices = devices;
    this.#db = new DatabaseSync(path);
    this.#db.exec("PRAGMA journal_mode = WAL");
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS att_log (id INTEGER PRIMARY KEY, sn TEXT NOT NULL, pin TEXT, punch_time TEXT NOT NULL, status INTEGER, verify INTEGER)",
    );
    this.#db.exec("CREATE INDEX IF NOT EXISTS att_log_sn_id ON att_log (sn, id)");
  }

  get inserted(): number {
    return this.#insertedAt.length;
  }

  /** History from the last days, so the first sync has a backlog to drain. */
  seed(count: number): void {
    const start = Date.now() - count * 60_000;
    this.#insert(Array.from({ length: count }, (_, i) => start + i * 60_000));
  }

  start(perSecond: number): void {
    this.#timer = setInterval(() => this.#insert([Date.now()]), Math.round(1000 / perSecond));
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** How long ago the oldest row the cloud does not have yet was written (rows go in order). */
  lagMs(deliveredCount: number): number | null {
    if (deliveredCount >= this.#insertedAt.length) return 0;
    const at = this.#insertedAt[deliveredCount];
    return at === undefined ? null : Date.now() - at;
  }

  #insert(times: readonly number[]): void {
    const stmt = this.#db.prepare("INSERT INTO att_log (sn, pin, punch_time, status, verify) VALUES (?, ?, ?, ?, ?)");
    this.#db.exec("BEGIN");
    for (const t of times) {
      this.#user++;
      // Device-local (Asia/Kolkata) naive time, as ZKTeco-style software stores it.
      const local = new Date(t + 330 * 60_000).toISOString().slice(0, 19).replace("T", " ");
      stmt.run(
        this.#devices[this.#user % this.#devices.length] as string,
        String(1000 + (this.#user % 37)),
        local,
        this.#user % 2,
        1,
      );
    }
    this.#db.exec("COMMIT");
    const now = Date.now();
    for (let i = 0; i < times.length; i++) this.#insertedAt.push(now);
  }

  close(): void {
    this.stop();
    this.#db.close();
  }
}
