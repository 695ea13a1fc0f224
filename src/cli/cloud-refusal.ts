import { type CloudResponse, cloudErrorText } from "../link/cloud-client.ts";

/**
 * A refused signed request in the operator's terms. The cloud's own text explains the signing protocol to an
 * integrator (string to sign, headers); someone enrolling needs to hear which of their inputs is wrong.
 */
export function refusalWords(response: CloudResponse, nodeId: string): string {
  let code: unknown;
  try {
    code = (JSON.parse(response.body.toString("utf8")) as { error?: unknown }).error;
  } catch {
    code = undefined;
  }
  switch (code) {
    case "bad_signature":
      return `the secret does not match node ${nodeId}`;
    case "unknown_node":
      return `the cloud does not know node ${nodeId}`;
    case "stale_timestamp":
      return "this machine's clock is more than 5 minutes away from the cloud's";
    default:
      return cloudErrorText(response);
  }
}
