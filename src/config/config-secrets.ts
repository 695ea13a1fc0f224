import type { ConnectorConfig } from "./config-schema.ts";

/**
 * Every secret a config carries (database passwords today): they arrive inside the encrypted config, and from the
 * moment it is applied no log line, status text or error may show one.
 */
export function configSecrets(config: ConnectorConfig): string[] {
  const out: string[] = [];
  for (const source of config.sources) {
    if (source.kind === "database" && "password" in source.connection && source.connection.password)
      out.push(source.connection.password);
  }
  return out;
}
