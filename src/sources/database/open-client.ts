import type { DatabaseSourceConfig } from "../../config/config-schema.ts";
import type { SqlClient } from "./sql-client.ts";
import { SqliteClient } from "./sqlite-client.ts";

/**
 * Opens the client for a source's engine. Drivers load lazily, so a connector reading only SQLite never loads pg,
 * mysql2 or tedious.
 */
export async function openSqlClient(config: DatabaseSourceConfig, signal: AbortSignal): Promise<SqlClient> {
  const c = config.connection;
  signal.throwIfAborted();
  switch (c.engine) {
    case "sqlite":
      return SqliteClient.open(c.path, config.queryTimeoutMs);
    case "postgres": {
      const { PostgresClient } = await import("./postgres-client.ts");
      return PostgresClient.open(c, config.queryTimeoutMs, signal);
    }
    case "mysql": {
      const { MysqlClient } = await import("./mysql-client.ts");
      return MysqlClient.open(c, config.queryTimeoutMs, signal);
    }
    case "mssql": {
      const { MssqlClient } = await import("./mssql-client.ts");
      return MssqlClient.open(c, config.queryTimeoutMs, signal);
    }
    case "access": {
      const { AccessClient } = await import("./access-client.ts");
      return AccessClient.open(c, signal);
    }
  }
}
