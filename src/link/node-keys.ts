import { hkdfSync } from "node:crypto";

/** Per-purpose keys derived from the node secret (docs/protocol.md): the secret itself is used for nothing else. */
export interface NodeKeys {
  readonly sign: Buffer;
  readonly config: Buffer;
  readonly local: Buffer;
  /** Checks the MAC on every answer to a signed request. */
  readonly response: Buffer;
}

const SALT = Buffer.from("cams-bioapi", "utf8");

function derive(secret: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, SALT, Buffer.from(`cams-bioapi/v1/${purpose}`, "utf8"), 32));
}

export function deriveNodeKeys(nodeSecret: string): NodeKeys {
  const secret = Buffer.from(nodeSecret, "base64url");
  return {
    sign: derive(secret, "sign"),
    config: derive(secret, "config"),
    local: derive(secret, "local"),
    response: derive(secret, "response"),
  };
}
