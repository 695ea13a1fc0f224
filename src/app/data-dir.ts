import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** The files of a connector's data directory. Nothing in it holds a secret in plaintext. */
export interface DataDirLayout {
  readonly root: string;
  readonly store: string;
  readonly secrets: string;
  readonly keyFile: string;
  readonly statusFile: string;
}

export function dataDirLayout(root: string): DataDirLayout {
  return {
    root,
    store: join(root, "connector.db"),
    secrets: join(root, "secrets.json"),
    keyFile: join(root, "master.key"),
    statusFile: join(root, "status.json"),
  };
}

/** `BIOAPI_DATA_DIR`, else ./.data/connector (the production service passes its state directory explicitly). */
export function defaultDataDir(): string {
  return process.env.BIOAPI_DATA_DIR ?? join(process.cwd(), ".data", "connector");
}

export function ensureDataDir(root: string): DataDirLayout {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  return dataDirLayout(root);
}
