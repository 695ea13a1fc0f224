import type { Finding } from "../core/check.ts";
import { formatDuration } from "../core/duration.ts";
import { BioError, describeError } from "../core/errors.ts";
import { clause } from "../core/sentence.ts";
import { type CloudClient, type CloudResponse, cloudErrorText } from "./cloud-client.ts";

/** The cloud refuses requests whose timestamp is further than this from its clock (docs/protocol.md). */
const SIGNATURE_WINDOW_MS = 300_000;
const SKEW_WARN_MS = 30_000;
const CLOUD_TIMEOUT_MS = 10_000;

export interface CloudTarget {
  readonly client: CloudClient;
  readonly cloudUrl: string;
}

export interface CloudCheck {
  readonly subject: string;
  readonly findings: Finding[];
  /** The cloud's answer to the signed config request, when it accepted the signature: the config floor reads it. */
  readonly configResponse?: CloudResponse;
}

/**
 * The link to the cloud, from this machine: health (reachable, and its clock against ours), then one signed request
 * for this node's config (the signature, and the clock as the cloud sees it). Nothing is sent but two GETs.
 */
export async function checkCloud(target: CloudTarget, signal: AbortSignal): Promise<CloudCheck> {
  const subject = `cloud ${new URL(target.cloudUrl).origin}`;
  const findings: Finding[] = [];
  const reachable = await checkHealth(target.client, subject, findings, signal);
  if (!reachable) return { subject, findings };
  return { subject, findings, ...(await checkSignature(target.client, subject, findings, signal)) };
}

async function checkHealth(
  client: CloudClient,
  subject: string,
  out: Finding[],
  signal: AbortSignal,
): Promise<boolean> {
  let reachable = false;
  try {
    const before = Date.now();
    const res = await client.request({
      method: "GET",
      path: "/v1/health",
      timeoutMs: CLOUD_TIMEOUT_MS,
      signal,
      unsigned: true,
    });
    const after = Date.now();
    if (res.status !== 200)
      throw new BioError("CLOUD_UNAVAILABLE", `The health check answered ${clause(cloudErrorText(res))}.`);
    reachable = true;
    out.push({ subject, check: "reachable", status: "ok", detail: `/v1/health in ${after - before} ms` });
    const cloudTime = Date.parse((JSON.parse(res.body.toString("utf8")) as { time?: string }).time ?? "");
    if (Number.isFinite(cloudTime)) out.push(skewFinding(subject, Math.round((before + after) / 2 - cloudTime)));
  } catch (error) {
    if (signal.aborted) throw error;
    out.push({
      subject,
      check: "reachable",
      status: "fail",
      detail: describeError(error).message,
      fix: "Check outbound HTTPS to the cloud from this machine: internet access, proxy, firewall, DNS.",
    });
  }
  // A health answer that is not JSON still proves the cloud reachable: the signed request is tried all the same.
  return reachable;
}

/** This machine's clock minus the cloud's: beyond the signature window every signed request is refused. */
function skewFinding(subject: string, skew: number): Finding {
  const words = `this machine's clock is ${formatDuration(Math.abs(skew))} ${skew > 0 ? "ahead of" : "behind"} the cloud`;
  if (Math.abs(skew) >= SIGNATURE_WINDOW_MS)
    return {
      subject,
      check: "clock",
      status: "fail",
      detail: `${words}: beyond the ±${SIGNATURE_WINDOW_MS / 60_000} min the cloud accepts, so every request is refused.`,
      fix: "Synchronise this machine's clock (Windows: w32tm /resync; Linux: timedatectl set-ntp true).",
    };
  if (Math.abs(skew) >= SKEW_WARN_MS)
    return {
      subject,
      check: "clock",
      status: "warn",
      detail: `${words}.`,
      fix: "Turn on time synchronisation (NTP) before the gap reaches 5 minutes.",
    };
  return { subject, check: "clock", status: "ok", detail: `within ${formatDuration(Math.abs(skew))} of the cloud` };
}

async function checkSignature(
  client: CloudClient,
  subject: string,
  out: Finding[],
  signal: AbortSignal,
): Promise<{ configResponse?: CloudResponse }> {
  let res: CloudResponse;
  try {
    res = await client.request({ method: "GET", path: client.nodePath("config"), timeoutMs: CLOUD_TIMEOUT_MS, signal });
  } catch (error) {
    if (signal.aborted) throw error;
    out.push({ subject, check: "signature", status: "fail", detail: describeError(error).message });
    return {};
  }
  if (res.status === 401 || res.status === 403) {
    out.push({
      subject,
      check: "signature",
      status: "fail",
      detail: `The cloud refused this node's signed request: ${clause(cloudErrorText(res))}.`,
      fix: "If the clock is right, the node secret is not the one the cloud holds: re-enroll (bioapi enroll --force) with the secret from bioapi cloud node add.",
    });
    return {};
  }
  if (res.status === 429 || res.status >= 500) {
    out.push({
      subject,
      check: "signature",
      status: "warn",
      detail: `The cloud failed to answer a signed request: ${cloudErrorText(res)}; the signature could not be checked.`,
      fix: "The cloud is unreachable or failing right now; the connector retries by itself. Run doctor again later, or check the cloud's own status.",
    });
    return {};
  }
  out.push({ subject, check: "signature", status: "ok", detail: `accepted (${res.status})` });
  return { configResponse: res };
}
