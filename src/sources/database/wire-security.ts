import { isIP } from "node:net";
import type { DatabaseConnectionConfig } from "../../config/config-schema.ts";

/** What a database connection turned out to be on the wire, once it was open. */
export interface WireSecurity {
  /** The session runs inside TLS. */
  readonly tls: boolean;
  /** The server's certificate was checked (mode verify). */
  readonly verified: boolean;
}

/**
 * Loopback never leaves the machine, so a password sent on it in the clear cannot be read or asked for by anyone on
 * the LAN: 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) and the name "localhost" (RFC 6761). Other names, even
 * *.localhost, count as remote: what they resolve to is up to the machine's resolver.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "");
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) {
    // The URL parser writes every spelling of an address one way: 0:0:0:0:0:0:0:1 is ::1, ::ffff:127.0.0.1 is ::ffff:7f00:1.
    const canonical = new URL(`http://[${h}]/`).hostname;
    return canonical === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
  }
  return false;
}

type NetworkConnection = Extract<DatabaseConnectionConfig, { readonly host: string }>;

function isNetwork(c: DatabaseConnectionConfig): c is NetworkConnection {
  return "host" in c;
}

function whereOf(c: NetworkConnection): string {
  return `${c.engine} ${c.host}:${c.port}/${c.database}`;
}

/**
 * The sentence to log and show when a password crosses the network without TLS; undefined when it does not (TLS,
 * loopback, no password, or a file engine). Names the server, never the credentials.
 */
export function cleartextPasswordWarning(
  connection: DatabaseConnectionConfig,
  wire: WireSecurity | undefined,
): string | undefined {
  if (!isNetwork(connection) || !wire || wire.tls) return undefined;
  if (connection.password === "" || isLoopbackHost(connection.host)) return undefined;
  const why =
    connection.tls.mode === "off"
      ? 'its tls is "off"'
      : `the server offers no TLS (tls "${connection.tls.mode}" connected without it)`;
  return `The password for ${whereOf(connection)} crosses the network without TLS: ${why}. Anyone on the path can read the session, and a machine posing as the server can ask for the password. Enable TLS on the server and set the connection's tls to "verify" (with its ca), or at least "require".`;
}

/** How the session is protected, for doctor's line: TLS verified, TLS not verified, or plain (and why that is fine). */
export function wireSummary(connection: DatabaseConnectionConfig, wire: WireSecurity | undefined): string | undefined {
  if (!isNetwork(connection) || !wire) return undefined;
  const mode = `tls "${connection.tls.mode}"`;
  if (wire.tls && wire.verified) return `TLS, server certificate verified (${mode})`;
  if (wire.tls)
    return isLoopbackHost(connection.host)
      ? `TLS, certificate not verified (${mode}; loopback)`
      : `TLS, certificate not verified (${mode}): "verify" with the server's ca would also stop an impostor`;
  if (isLoopbackHost(connection.host)) return `no TLS (${mode}); loopback, never leaves this machine`;
  if (connection.password === "") return `no TLS (${mode}); no password is sent`;
  return `no TLS (${mode})`;
}
