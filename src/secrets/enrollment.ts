import { BioError } from "../core/errors.ts";
import type { SecretStore } from "./secret-store.ts";

/** What `bioapi enroll` records. All of it lives in the SecretStore, never in a plain file. */
export interface Enrollment {
  readonly cloudUrl: string;
  readonly nodeId: string;
  /** base64url, 32 bytes. */
  readonly nodeSecret: string;
}

const NAME = "enrollment";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function validateEnrollment(input: { cloudUrl: string; nodeId: string; nodeSecret: string }): Enrollment {
  let url: URL;
  try {
    url = new URL(input.cloudUrl);
  } catch {
    throw new BioError("USAGE", `The cloud URL "${input.cloudUrl}" is not a URL.`, {
      hint: "Pass it as https://host[:port].",
    });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new BioError("USAGE", `The cloud URL must be https, not ${url.protocol}.`);
  }
  if (url.username || url.password) {
    throw new BioError("USAGE", "The cloud URL must not carry a user name or password.", {
      hint: "Give only https://host[:port]; the node authenticates with its secret.",
    });
  }
  // Plain http only to this machine (the reference cloud, a local TLS-terminating proxy).
  if (url.protocol === "http:" && !["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    throw new BioError("USAGE", `The cloud URL must use https for ${url.hostname}.`, {
      hint: "Plain http is accepted only for a cloud on this machine (127.0.0.1 / localhost).",
    });
  }
  if (!UUID.test(input.nodeId)) {
    throw new BioError("USAGE", `The node id "${input.nodeId}" is not a UUID.`, {
      hint: "Copy the node id printed by the cloud when the node was added.",
    });
  }
  const secret = input.nodeSecret.trim();
  if (!/^[A-Za-z0-9_-]{43}$/.test(secret) || Buffer.from(secret, "base64url").length !== 32) {
    throw new BioError("USAGE", "The node secret is not 32 bytes of base64url.", {
      hint: "Copy the secret exactly as the cloud printed it (43 characters), into a file or stdin.",
    });
  }
  return {
    cloudUrl: url.origin + url.pathname.replace(/\/+$/, ""),
    nodeId: input.nodeId.toLowerCase(),
    nodeSecret: secret,
  };
}

export async function saveEnrollment(store: SecretStore, enrollment: Enrollment): Promise<void> {
  await store.set(NAME, Buffer.from(JSON.stringify(enrollment), "utf8"));
}

export async function loadEnrollment(store: SecretStore): Promise<Enrollment> {
  const raw = await store.get(NAME);
  if (!raw) {
    throw new BioError("NOT_ENROLLED", "This connector is not enrolled.", {
      hint: "Run: bioapi enroll --cloud-url URL --node-id UUID --secret-file FILE (or pipe the secret on stdin).",
    });
  }
  return JSON.parse(raw.toString("utf8")) as Enrollment;
}
