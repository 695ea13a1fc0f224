import type { Finding } from "../core/check.ts";
import { describeError } from "../core/errors.ts";
import type { CloudResponse } from "../link/cloud-client.ts";
import type { Store } from "../store/store.ts";
import { decryptEnvelope, parseEnvelope } from "./config-envelope.ts";
import { type ConnectorConfig, parseConfig } from "./config-schema.ts";
import { openCachedConfig } from "./open-cached-config.ts";

/** What a config check found, and the config it found usable (with where it came from, for the report). */
export interface ConfigCheck {
  readonly findings: Finding[];
  readonly found?: { readonly config: ConnectorConfig; readonly from: string };
}

/** The config cached in the local store decrypts with this node's key. An invalid one is left to the cloud's copy. */
export function checkCachedConfig(
  store: Pick<Store, "cachedConfig">,
  localKey: Uint8Array,
  nodeId: string,
): ConfigCheck {
  try {
    const cached = openCachedConfig(store, localKey, nodeId);
    if (cached.state === "unreadable") throw cached.error;
    if (cached.state === "none" || !cached.parsed.ok) return { findings: [] };
    return {
      findings: [
        { subject: "node", check: "cached config", status: "ok", detail: `version ${cached.version} decrypts` },
      ],
      found: { config: cached.parsed.config, from: `cached version ${cached.version}` },
    };
  } catch (error) {
    return {
      findings: [
        {
          subject: "node",
          check: "cached config",
          status: "warn",
          detail: describeError(error).message,
          fix: "The connector fetches a fresh copy from the cloud when it starts.",
        },
      ],
    };
  }
}

/** The cloud's answer to the signed config request: a config sealed for this node, and valid. */
export function checkCloudConfig(
  response: CloudResponse,
  target: { readonly subject: string; readonly configKey: Uint8Array; readonly nodeId: string },
): ConfigCheck {
  const { subject, nodeId } = target;
  if (response.status === 404)
    return {
      findings: [
        {
          subject,
          check: "config",
          status: "fail",
          detail: "The cloud holds no config for this node.",
          fix: `Publish one: bioapi cloud config set ${nodeId} FILE.`,
        },
      ],
    };
  if (response.status !== 200) return { findings: [] };
  try {
    const envelope = parseEnvelope(response.body);
    const parsed = parseConfig(decryptEnvelope(target.configKey, nodeId, envelope));
    if (!parsed.ok)
      return {
        findings: [
          {
            subject,
            check: "config",
            status: "fail",
            detail: `Version ${envelope.version} is invalid: ${parsed.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}.`,
            fix: "Fix the config in the cloud and publish a new version.",
          },
        ],
      };
    return {
      findings: [
        {
          subject,
          check: "config",
          status: "ok",
          detail: `version ${envelope.version} decrypts and is valid (${parsed.config.sources.length} sources)`,
        },
      ],
      found: { config: parsed.config, from: `the cloud's version ${envelope.version}` },
    };
  } catch (error) {
    return {
      findings: [
        {
          subject,
          check: "config",
          status: "fail",
          detail: describeError(error).message,
          fix: "The config was sealed for another node or secret: publish it again for this node id.",
        },
      ],
    };
  }
}
