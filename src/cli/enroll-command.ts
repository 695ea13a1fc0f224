import { existsSync } from "node:fs";
import { mkdir, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { type DataDirLayout, defaultDataDir, ensureDataDir } from "../app/data-dir.ts";
import { systemClock } from "../core/clock.ts";
import { BioError } from "../core/errors.ts";
import { CloudClient, type CloudResponse, cloudErrorText } from "../link/cloud-client.ts";
import { deriveNodeKeys } from "../link/node-keys.ts";
import { claimDataDir, type FileSecurityApi } from "../platform/windows/file-security-api.ts";
import { type Enrollment, loadEnrollment, saveEnrollment, validateEnrollment } from "../secrets/enrollment.ts";
import { openSecretStore } from "../secrets/open-secret-store.ts";
import { InstanceLock } from "../store/instance-lock.ts";
import { type CliIo, usageError } from "./cli-io.ts";
import { refusalWords } from "./cloud-refusal.ts";
import { optionsOf, renderHelp } from "./command-spec.ts";
import { ENROLL } from "./commands.ts";

export const ENROLL_USAGE = renderHelp(ENROLL);

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

function parseEnrollArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    options: optionsOf(ENROLL),
    strict: true,
    allowPositionals: false,
  });
}

/** A 404 counts as "enrolled, no config yet" only when it is the protocol's no_config, not any web server's 404. */
function isNoConfig(response: CloudResponse): boolean {
  try {
    return (JSON.parse(response.body.toString("utf8")) as { error?: string }).error === "no_config";
  } catch {
    return false;
  }
}

export async function enrollCommand(
  argv: string[],
  io: CliIo,
  { platform = process.platform, fileSecurity }: { platform?: NodeJS.Platform; fileSecurity?: FileSecurityApi } = {},
): Promise<number> {
  if (argv.some((a) => a === "--secret" || a.startsWith("--secret="))) {
    throw usageError(
      "Refusing --secret: a secret on the command line is visible to every user in the process list. Use --secret-file FILE or pipe it on stdin.",
    );
  }
  let parsed: ReturnType<typeof parseEnrollArgs>;
  try {
    parsed = parseEnrollArgs(argv);
  } catch {
    // parseArgs quotes the offending argument, and a secret pasted by mistake must not be echoed.
    throw usageError(`Unexpected or malformed argument.\n${ENROLL_USAGE}`);
  }
  const { values } = parsed;
  if (values.help) {
    io.out(ENROLL_USAGE);
    return 0;
  }
  if (!values["cloud-url"] || !values["node-id"])
    throw usageError(`--cloud-url and --node-id are required.\n${ENROLL_USAGE}`);
  let secret: string;
  if (values["secret-file"]) {
    try {
      secret = await readFile(values["secret-file"], "utf8");
    } catch (error) {
      // The path is not echoed: people do paste the secret where the path belongs.
      throw usageError(
        `Cannot read the file given to --secret-file (${(error as NodeJS.ErrnoException).code ?? "error"}).`,
      );
    }
  } else if (values["secret-stdin"] || !io.stdin.isTTY) secret = await readStdin(io.stdin);
  else throw usageError("Give the node secret with --secret-file FILE or on stdin (echo ... | bioapi enroll ...).");

  const enrollment = validateEnrollment({
    cloudUrl: values["cloud-url"],
    nodeId: values["node-id"],
    nodeSecret: secret,
  });
  const dataDir = values["data-dir"] ?? defaultDataDir();
  if (platform === "win32") {
    const api =
      fileSecurity ?? new (await import("../platform/windows/koffi-file-security-api.ts")).KoffiFileSecurityApi();
    await claimDataDir(api, dataDir, (path) => mkdir(dirname(path), { recursive: true }));
  }
  const layout = ensureDataDir(dataDir);
  // Held until the enrollment is stored: a running connector would go on with the old credentials, and one
  // starting midway would read half of the change.
  const lock = InstanceLock.acquire(layout.root, "enroll");
  try {
    await storeEnrollment(enrollment, layout, values, io);
  } finally {
    lock.release();
  }
  return 0;
}

async function storeEnrollment(
  enrollment: Enrollment,
  layout: DataDirLayout,
  values: ReturnType<typeof parseEnrollArgs>["values"],
  io: CliIo,
): Promise<void> {
  const previous = await enrolledNode(layout);
  if (previous && previous !== enrollment.nodeId) {
    if (!values.force) {
      throw new BioError(
        "ENROLLMENT_CONFLICT",
        `The data directory ${layout.root} is enrolled as node ${previous}; refusing to replace it with node ${enrollment.nodeId}.`,
        {
          hint: "Use another --data-dir for the new node, or pass --force to replace the enrollment (punches still waiting in the outbox would then be sent as the new node).",
        },
      );
    }
    io.err(`Replacing the enrollment of node ${previous} with node ${enrollment.nodeId} (--force).`);
  }

  if (!values["no-verify"]) {
    const client = new CloudClient({
      baseUrl: enrollment.cloudUrl,
      nodeId: enrollment.nodeId,
      keys: deriveNodeKeys(enrollment.nodeSecret),
      clock: systemClock,
    });
    const response = await client.request({ method: "GET", path: client.nodePath("config"), timeoutMs: 10_000 });
    if (response.status === 401 || response.status === 403) {
      throw new BioError(
        "CLOUD_AUTH",
        `The cloud refused these credentials: ${refusalWords(response, enrollment.nodeId)}.`,
        {
          hint: "Check the node id and secret, and that this machine's clock is within 5 minutes of real time. Nothing was stored.",
        },
      );
    }
    if (response.status !== 200 && !(response.status === 404 && isNoConfig(response))) {
      throw new BioError("CLOUD_PROTOCOL", `Unexpected answer from the cloud: ${cloudErrorText(response)}.`, {
        hint: "Check the cloud URL, or pass --no-verify to enroll offline. Nothing was stored.",
      });
    }
  }
  if (values.force && existsSync(layout.secrets)) {
    const aside = `${layout.secrets}.old-${Date.now()}`;
    await rename(layout.secrets, aside);
    io.err(`Kept the previous secrets file aside as ${aside}.`);
  }
  const secrets = openSecretStore(layout);
  await saveEnrollment(secrets, enrollment);
  io.out(
    `Enrolled node ${enrollment.nodeId} with ${enrollment.cloudUrl}; credentials stored encrypted (${secrets.backend}) in ${layout.root}.`,
  );
}

/** The node this directory is enrolled as; undefined when it is not, or when its secrets cannot be opened. */
async function enrolledNode(layout: DataDirLayout): Promise<string | undefined> {
  try {
    return (await loadEnrollment(openSecretStore(layout))).nodeId;
  } catch {
    // Unreadable secrets are --force's other case, reported where the new enrollment is saved.
    return undefined;
  }
}
