import type { IncomingMessage } from "node:http";
import { gunzip } from "node:zlib";

export class BodyTooLargeError extends Error {
  override readonly name = "BodyTooLargeError";
  readonly limit: number;

  constructor(what: string, limit: number) {
    super(`${what} exceeds ${limit} bytes`);
    this.limit = limit;
  }
}

/** The client went away before the body was complete: nothing may be applied from it. */
export class BodyIncompleteError extends Error {
  override readonly name = "BodyIncompleteError";
}

/**
 * Reads the raw body bytes as sent (the content hash covers them, before any gunzip). Past the limit the rest is
 * drained and dropped, so the client still reads our 413 instead of a reset connection.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(new BodyTooLargeError("the request body", limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
    };
    req.on("data", (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        settle(() => reject(new BodyTooLargeError("the request body", limit)));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => settle(() => resolve(Buffer.concat(chunks, size))));
    req.on("error", (error) => settle(() => reject(new BodyIncompleteError(error.message))));
    req.on("close", () => settle(() => reject(new BodyIncompleteError("the client closed the connection early"))));
  });
}

export function gunzipLimited(body: Buffer, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gunzip(body, { maxOutputLength: limit }, (error, result) => {
      if (error === null) resolve(result);
      else if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
        reject(new BodyTooLargeError("the decompressed body", limit));
      } else reject(error);
    });
  });
}
