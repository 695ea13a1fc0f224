import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { type FileHandle, link, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export interface AtomicWriteOptions {
  /** The file's mode, set on the open file. Default 0600: every file that matters holds or guards a secret. */
  readonly mode?: number;
  /**
   * "replace" (default) renames over whatever is at the path. "create" never replaces: it links the finished file
   * into place and returns false if a file was already there, so two processes creating one key agree on one.
   */
  readonly existing?: "replace" | "create";
}

// O_EXCL with O_CREAT already refuses a symlink at the path (POSIX); O_NOFOLLOW says so twice where it exists.
// Windows has neither O_NOFOLLOW nor symlinks a standard user may create by default; the constant is then 0.
const CREATE_FLAGS = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | (constants.O_NOFOLLOW ?? 0);
const NAME_ATTEMPTS = 8;

/**
 * Writes `data` to `path` so that a reader sees the old file or the new one, never a mix, and a crash leaves one of
 * the two. The temp file is created exclusively under a random name in the same directory, so nothing left there
 * earlier (a 0644 file, a symlink to elsewhere) is written through or lends its mode; the mode is set on the open
 * file, so neither the umask nor a pre-existing file can loosen it. The file is fsynced before the rename and the
 * directory after it, so the rename itself survives a power cut. On failure the temp file is removed and the old
 * file is untouched. Returns false only for `existing: "create"` when the path was already taken.
 */
export async function atomicWrite(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<boolean> {
  const mode = options.mode ?? 0o600;
  const dir = dirname(path);
  const { handle, tmp } = await createTemp(dir, basename(path), mode);
  let placed = false;
  try {
    try {
      // fchmod: open()'s mode is filtered by the umask; this is not.
      await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.existing === "create") {
      try {
        await link(tmp, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
        throw error;
      }
      // The temp name is removed in finally; the linked name stays.
    } else {
      await rename(tmp, path);
      placed = true;
    }
    await syncDirectory(dir);
    return true;
  } finally {
    if (!placed) await unlink(tmp).catch(ignoreMissing);
  }
}

async function createTemp(dir: string, name: string, mode: number): Promise<{ handle: FileHandle; tmp: string }> {
  for (let attempt = 1; ; attempt++) {
    // Unpredictable, so nobody can place a file or a link at the name beforehand; dot-prefixed so a directory
    // listing or a glob over *.json passes over it.
    const tmp = join(dir, `.${name}.${randomBytes(8).toString("hex")}.tmp`);
    try {
      return { handle: await open(tmp, CREATE_FLAGS, mode), tmp };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= NAME_ATTEMPTS) throw error;
    }
  }
}

/**
 * Makes the rename durable. Skipped on Windows: Node cannot open a directory there (EISDIR; that needs
 * FILE_FLAG_BACKUP_SEMANTICS), so there is no handle to flush, and NTFS's metadata journal already keeps the rename
 * all-or-nothing across a crash. A file system that cannot fsync a directory (EINVAL: some network and FUSE mounts)
 * has done all it can once the rename returned.
 */
async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EINVAL") throw error;
  } finally {
    await handle.close();
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
}
