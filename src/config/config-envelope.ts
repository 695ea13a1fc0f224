import { BioError } from "../core/errors.ts";
import { open, seal } from "../secrets/envelope.ts";

/** The cloud's config response body (docs/protocol.md). */
export interface ConfigEnvelope {
  readonly nodeId: string;
  readonly version: number;
  readonly alg: "AES-256-GCM";
  readonly iv: string;
  readonly ciphertext: string;
}

export function configAssociatedData(nodeId: string, version: number): string {
  return `cams-bioapi/config\n${nodeId}\n${version}`;
}

export function parseEnvelope(body: Buffer): ConfigEnvelope {
  let value: Partial<ConfigEnvelope>;
  try {
    value = JSON.parse(body.toString("utf8")) as Partial<ConfigEnvelope>;
  } catch (error) {
    throw new BioError("CLOUD_PROTOCOL", "The cloud's config response is not JSON.", { cause: error });
  }
  if (
    typeof value.nodeId !== "string" ||
    !Number.isSafeInteger(value.version) ||
    value.alg !== "AES-256-GCM" ||
    typeof value.iv !== "string" ||
    typeof value.ciphertext !== "string"
  ) {
    throw new BioError("CLOUD_PROTOCOL", "The cloud's config response lacks nodeId, version, alg, iv or ciphertext.", {
      hint: "The cloud speaks a different protocol version; check the cloud URL.",
    });
  }
  return value as ConfigEnvelope;
}

/**
 * Decrypts with the node's config key; the node id and version are associated data, so a config replayed from
 * another node or relabelled with another version fails authentication.
 */
export function decryptEnvelope(key: Uint8Array, expectedNodeId: string, envelope: ConfigEnvelope): unknown {
  if (envelope.nodeId !== expectedNodeId) {
    throw new BioError(
      "CONFIG_DECRYPT",
      `The config is addressed to node ${envelope.nodeId}, not this node (${expectedNodeId}).`,
      {
        hint: "Check that the connector is enrolled with the node id the cloud holds this config for.",
      },
    );
  }
  const iv = Buffer.from(envelope.iv, "base64");
  const sealed = Buffer.concat([iv, Buffer.from(envelope.ciphertext, "base64")]);
  let plaintext: Buffer;
  try {
    plaintext = open(key, sealed, configAssociatedData(envelope.nodeId, envelope.version), "config");
  } catch (error) {
    throw new BioError(
      "CONFIG_DECRYPT",
      `Config version ${envelope.version} failed authentication: it was tampered with, or it was encrypted with another node secret.`,
      {
        cause: error,
        hint: "If the node was re-added in the cloud, re-enroll with the new secret (bioapi enroll).",
      },
    );
  }
  try {
    return JSON.parse(plaintext.toString("utf8"));
  } catch (error) {
    throw new BioError("CONFIG_INVALID", `Config version ${envelope.version} decrypted but is not JSON.`, {
      cause: error,
    });
  }
}

/** The last good config, re-sealed with the node's local-storage key for the on-disk cache. */
export function sealCache(
  localKey: Uint8Array,
  nodeId: string,
  version: number,
  config: unknown,
): { iv: Buffer; ciphertext: Buffer } {
  const sealed = seal(
    localKey,
    Buffer.from(JSON.stringify(config), "utf8"),
    `cams-bioapi/config-cache\n${nodeId}\n${version}`,
  );
  return { iv: sealed.subarray(0, 12), ciphertext: sealed.subarray(12) };
}

export function openCache(
  localKey: Uint8Array,
  nodeId: string,
  version: number,
  iv: Uint8Array,
  ciphertext: Uint8Array,
): unknown {
  const plaintext = open(
    localKey,
    Buffer.concat([iv, ciphertext]),
    `cams-bioapi/config-cache\n${nodeId}\n${version}`,
    "cached config",
  );
  return JSON.parse(plaintext.toString("utf8"));
}
