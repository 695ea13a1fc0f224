/** A minimal valid node config, shared by the cloud's own tests. */
export const SAMPLE_CONFIG = {
  schemaVersion: 1,
  sources: [
    {
      id: "main-db",
      kind: "database",
      connection: { engine: "sqlite", path: "/var/lib/att.db" },
      table: "checkinout",
      columns: { id: "id", deviceSerial: "sn", userId: "userid", time: "checktime" },
    },
  ],
};
