import { readFileSync } from "node:fs";

/** Set by the single-executable build (esbuild define), where package.json is not on disk. */
declare const __BIOAPI_EMBEDDED__: Readonly<Record<string, string>> | undefined;

/** A file the single-executable build embedded; undefined when running from the source tree. */
export function embedded(name: string): string | undefined {
  return typeof __BIOAPI_EMBEDDED__ === "object" ? __BIOAPI_EMBEDDED__[name] : undefined;
}

/** The connector's version, from package.json (read once at start-up). */
export const VERSION: string =
  embedded("version") ??
  (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
