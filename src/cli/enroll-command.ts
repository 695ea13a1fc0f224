import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { defaultDataDir, ensureDataDir, openSecretStore } from "../app/data-dir.ts";
import { systemClock } from "../core/clock.ts";
import { BioError } from "../core/errors.ts";
import { CloudClient, cloudErrorText } from "../link/cloud-client.ts";
import { deriveNodeKeys } from "../link/node-keys.ts";
import { saveEnrollment, validateEnrollment } from "../secrets/enrollment.ts";
import { type CliIo, usageError } from "./cli-io.ts";

export const ENROLL_USAGE = `Usage: bioapi enroll --cloud-url URL --node-id UUID [--secret-file FILE | --secret-stdin] [--data-dir DIR] [--no-verify]

Stores the node's credentials encrypted in the data directory. The node secret is read from a file or from
standard input, never from the command line (where other users could see it in the process list).`;

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

export async function enrollCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv.some((a) => a === "--secret" || a.startsWith("--secret="))) {
    throw usageError(
      "Refusing --secret: a secret on the command line is visible to every user in the process list. Use --secret-file FILE or pipe it on stdin.",
    );
  }
  const { values } = parseArgs({
    args: argv,
    options: {
      "cloud-url": { type: "string" },
      "node-id": { type: "string" },
      "secret-file": { type: "string" },
      "secret-stdin": { type: "boolean", default: false },
      "data-dir": { type: "string" },
      "no-verify": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    io.out(ENROLL_USAGE);
    return 0;
  }
  if (!values["cloud-url"] || !values["node-id"])
    throw usageError(`--cloud-url and --node-id are required.\n${ENROLL_USAGE}`);
  let secret: string;
  if (values["secret-file"]) secret = await readFile(values["secret-file"], "utf8");
  else if (values["secret-stdin"] || !io.stdin.isTTY) secret = await readStdin(io.stdin);
  else throw usageError("Give the node secret with --secret-file FILE or on stdin (echo ... | bioapi enroll ...).");

  const enrollment = validateEnrollment({
    cloudUrl: values["cloud-url"],
    nodeId: values["node-id"],
    nodeSecret: secret,
  });
  const dataDir = values["data-dir"] ?? defaultDataDir();
  const layout = ensureDataDir(dataDir);

  if (!values["no-verify"]) {
    const client = new CloudClient({
      baseUrl: enrollment.cloudUrl,
      nodeId: enrollment.nodeId,
      keys: deriveNodeKeys(enrollment.nodeSecret),
      clock: systemClock,
    });
    const response = await client.request({ method: "GET", path: client.nodePath("config"), timeoutMs: 10_000 });
    if (response.status === 401 || response.status === 403) {
      throw new BioError("CLOUD_AUTH", `The cloud refused these credentials (${cloudErrorText(response)}).`, {
        hint: "Check the node id and secret, and that this machine's clock is within 5 minutes of real time. Nothing was stored.",
      });
    }
    if (response.status !== 200 && response.status !== 404) {
      throw new BioError("CLOUD_PROTOCOL", `Unexpected answer from the cloud: ${cloudErrorText(response)}.`, {
        hint: "Check the cloud URL, or pass --no-verify to enroll offline. Nothing was stored.",
      });
    }
  }
  const secrets = openSecretStore(layout);
  await saveEnrollment(secrets, enrollment);
  io.out(
    `Enrolled node ${enrollment.nodeId} with ${enrollment.cloudUrl}; credentials stored encrypted (${secrets.backend}) in ${dataDir}.`,
  );
  return 0;
}
