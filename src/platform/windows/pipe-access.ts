import { createHash } from "node:crypto";
import { BioError } from "../../core/errors.ts";

/**
 * A service's own SID (NT SERVICE\<name>): S-1-5-80 followed by the SHA-1 of the upper-cased name in UTF-16LE,
 * read as five little-endian 32-bit numbers. Windows derives it this way whether or not the service exists yet, so
 * an access list can name it before install.
 */
export function serviceSid(name: string): string {
  const digest = createHash("sha1").update(Buffer.from(name.toUpperCase(), "utf16le")).digest();
  const parts = [0, 4, 8, 12, 16].map((at) => digest.readUInt32LE(at));
  return `S-1-5-80-${parts.join("-")}`;
}

/**
 * The health pipe's access list: protected (nothing inherited) and full access for SYSTEM, Administrators and the
 * connector service's own SID only. The default list lets every account read, and a pipe's creator-owner entry
 * would follow whoever created it.
 */
export function healthPipeSddl(service: string): string {
  return `D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;${serviceSid(service)})`;
}

/** A failed call on the health pipe, told apart by its Win32 number (the same in every display language). */
export function pipeError(what: string, path: string, code: number): BioError {
  return new BioError("SERVICE", `${what} on the health pipe ${path} failed with Windows error ${code}.`, {
    hint:
      code === 5
        ? "Run the connector and the monitor as LocalSystem (the installer's default)."
        : code === 2 || code === 231
          ? "The connector is not serving its health channel right now (stopped, restarting, or every instance busy)."
          : "See the connector's log.",
    context: { win32: code },
  });
}
