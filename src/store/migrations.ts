/**
 * Versioned, forward-only schema migrations; PRAGMA user_version records how many have run. Never edit a shipped
 * entry: append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    source_id TEXT NOT NULL,
    body TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE delivered (
    id TEXT PRIMARY KEY,
    at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX delivered_at ON delivered (at);
  CREATE TABLE cursors (
    source_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source_id, key)
  ) WITHOUT ROWID;
  CREATE TABLE quarantine (
    source_id TEXT NOT NULL,
    punch_id TEXT,
    stage TEXT NOT NULL CHECK (stage IN ('source', 'sink')),
    reason TEXT NOT NULL,
    payload TEXT NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE TABLE config_cache (
    slot TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    iv BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    applied_at INTEGER NOT NULL
  );
  `,
  // A source row re-read (the lookback window, a bad id that never moves the cursor) is quarantined once: its key is
  // a hash of the row, unique per source.
  `
  ALTER TABLE quarantine ADD COLUMN row_key TEXT;
  CREATE UNIQUE INDEX quarantine_row_key ON quarantine (source_id, row_key) WHERE row_key IS NOT NULL;
  `,
  // Several sinks (issue 15). A punch leaves the outbox once every sink has settled it; until then a sink that has
  // settled it is recorded in sink_done. A sink delivers only rows after its from_seq (the outbox's newest row when
  // it was added), so adding a sink does not send it the whole backlog. delivered keeps the body for backfills.
  `
  CREATE TABLE sinks (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    from_seq INTEGER NOT NULL,
    added_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE sink_done (
    sink_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (sink_id, seq)
  ) WITHOUT ROWID;
  CREATE TABLE sink_memory (
    sink_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sink_id, key)
  ) WITHOUT ROWID;
  ALTER TABLE delivered ADD COLUMN body TEXT;
  ALTER TABLE delivered ADD COLUMN source_id TEXT;
  ALTER TABLE quarantine ADD COLUMN sink_id TEXT;
  `,
  // The journal leaves delivered (issue 15): bodies kept inline in delivered's id-keyed b-tree made every ack a
  // random insert of a ~300-byte row, and a single-sink drain 38% slower. An append-only rowid table takes them at the
  // end of the file instead, one row per settled batch (a JSON array of [id, source_id, body]); delivered keeps only
  // ids again.
  `
  CREATE TABLE journal (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    punches TEXT NOT NULL
  );
  INSERT INTO journal (at, punches)
    SELECT at, json_array(json_array(id, coalesce(source_id, ''), body)) FROM delivered WHERE body IS NOT NULL
    ORDER BY at;
  ALTER TABLE delivered DROP COLUMN body;
  ALTER TABLE delivered DROP COLUMN source_id;
  `,
];
