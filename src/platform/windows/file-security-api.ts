import { BioError } from "../../core/errors.ts";
import { type Win32Outcome, win32ErrorName } from "./registry-api.ts";

/**
 * The NTFS security surface the installer and the service need, as a port: the Windows implementation calls
 * advapi32 through koffi (koffi-file-security-api.ts), the in-memory one (memory-file-security-api.ts) keeps the same
 * contract for the tests on Linux. Failures are Win32 error numbers, never message text, as for the registry.
 */
export interface FileSecurityApi {
  /** GetNamedSecurityInfoW(OWNER) + ConvertSidToStringSidW: the owner's SID string, e.g. "S-1-5-32-544". */
  owner(path: string): Promise<Win32Outcome<string>>;
  /**
   * Owner Administrators and the protected DACL of DATA_DIR_SDDL on `path`, and on every file and folder below it
   * the same owner with only what they inherit from `path` (explicit entries removed): TreeResetNamedSecurityInfoW
   * with KeepExplicit FALSE. An administrator may make the Administrators group the owner without taking any
   * privilege, since they are a member of it.
   */
  secure(path: string): Promise<Win32Outcome<void>>;
  /**
   * CreateDirectoryW with DATA_DIR_SDDL as its security descriptor: the folder never exists, not even for a moment,
   * with the access list it would inherit from ProgramData (which lets every user create files in it). Answers
   * ERROR_ALREADY_EXISTS when something is already there, ERROR_PATH_NOT_FOUND when its parent is missing.
   */
  createDir(path: string): Promise<Win32Outcome<void>>;
  /** OpenProcessToken + GetTokenInformation(TokenUser): the SID of the account this process runs as. */
  self(): Promise<Win32Outcome<string>>;
  /**
   * The first of `path` and its parents that is a reparse point (a junction or a symbolic link), if any. Owner and
   * access calls by name follow them: a junction any user may create would have them read and reset its target.
   */
  linkOnPath(path: string): Promise<string | undefined>;
}

export const SID = {
  SYSTEM: "S-1-5-18",
  ADMINISTRATORS: "S-1-5-32-544",
  TRUSTED_INSTALLER: "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
} as const;

/**
 * Owner Administrators; SYSTEM and Administrators full control, inherited by files (OI) and folders (CI); nothing
 * inherited from ProgramData (P, protected), whose entries let every user create folders and files.
 */
export const DATA_DIR_SDDL = "O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/** The owners that only an administrator can be or become; a folder owned by any other can be re-opened by it. */
const TRUSTED_OWNERS: ReadonlySet<string> = new Set([SID.SYSTEM, SID.ADMINISTRATORS, SID.TRUSTED_INSTALLER]);

/** Win32 error numbers the file security calls return and we act on (winerror.h). */
export const FILE_ERROR = {
  FILE_NOT_FOUND: 2,
  PATH_NOT_FOUND: 3,
  ACCESS_DENIED: 5,
  ALREADY_EXISTS: 183,
  INVALID_OWNER: 1307,
  PRIVILEGE_NOT_HELD: 1314,
} as const;

/**
 * Whether a folder's owner can be trusted with what the service keeps in it. The owner of an object can always
 * rewrite its access list (WRITE_DAC is implied), so a folder a standard user created before the install stays
 * theirs whatever ACL is put on it: they grant themselves access back and replace files the service reads.
 */
export function checkDataDirOwner(dataDir: string, owner: string, self?: string): void {
  if (TRUSTED_OWNERS.has(owner.toUpperCase())) return;
  // A folder this very account owns crosses no boundary: only it (or an administrator) could change it. That is an
  // elevated administrator's own folder at install, and Wine's, which owns files by their Unix user.
  if (self !== undefined && owner.toUpperCase() === self.toUpperCase()) return;
  throw new BioError(
    "SERVICE",
    `${dataDir} is owned by ${owner}, not by SYSTEM, Administrators or this account: whoever owns it can give themselves access to it again, so the service will not use it.`,
    {
      hint: `Check what is in it, then as an administrator delete it (rmdir /s "${dataDir}") or take ownership of it (takeown /f "${dataDir}" /a /r /d y), and run bioapi service install again.`,
      context: { owner },
    },
  );
}

/** A failed file security call as a BioError, told apart by the number alone. */
export function fileSecurityError(call: string, path: string, error: number): BioError {
  if (error === FILE_ERROR.ACCESS_DENIED || error === FILE_ERROR.PRIVILEGE_NOT_HELD) {
    return new BioError("SERVICE", `Access to the security of ${path} was denied (${call}, Win32 error ${error}).`, {
      hint: `Run bioapi from an elevated prompt (Run as administrator). If it already is, something inside denies administrators: take ownership as an administrator (takeown /f "${path}" /a /r /d y) and try again.`,
      context: { win32Error: error },
    });
  }
  if (error === FILE_ERROR.FILE_NOT_FOUND || error === FILE_ERROR.PATH_NOT_FOUND) {
    return new BioError("SERVICE", `${path} does not exist (${call}, Win32 error ${error}).`, {
      hint: "Run bioapi service install, which creates it, or pass the --data-dir the services were installed with.",
      context: { win32Error: error },
    });
  }
  const known = Object.entries(FILE_ERROR).find(([, n]) => n === error)?.[0];
  const name = win32ErrorName(error) ?? (known ? `ERROR_${known}` : undefined);
  return new BioError("SERVICE", `${call} on ${path} failed with Win32 error ${error}${name ? ` (${name})` : ""}.`, {
    hint: `Look the number up with: certutil -error ${error}.`,
    context: { win32Error: error },
  });
}

/** The owner of `path`, or undefined when it does not exist. */
export async function ownerOf(api: FileSecurityApi, path: string): Promise<string | undefined> {
  const r = await api.owner(path);
  if (r.ok) return r.value;
  if (r.error === FILE_ERROR.FILE_NOT_FOUND || r.error === FILE_ERROR.PATH_NOT_FOUND) return undefined;
  throw fileSecurityError("GetNamedSecurityInfo", path, r.error);
}

/**
 * The installer's data directory step. The owner of a folder that already exists is checked before anything is
 * created or written, so a folder someone else prepared is refused untouched. A new folder is created with its
 * access list in the same call; one that appears between the check and the create (a race with a standard user) is
 * checked again. Then the tree is given to Administrators with only what it inherits from the folder, and
 * `mkdirs` creates what the services need inside (logs), which inherits the same.
 */
export async function prepareDataDir(
  api: FileSecurityApi,
  dataDir: string,
  mkdirs: { parent: (path: string) => Promise<unknown>; inside: (path: string) => Promise<unknown> },
): Promise<void> {
  await refuseLinks(api, dataDir);
  let owner = await ownerOf(api, dataDir);
  if (owner === undefined) {
    await mkdirs.parent(dataDir);
    const made = await api.createDir(dataDir);
    if (!made.ok && made.error !== FILE_ERROR.ALREADY_EXISTS)
      throw fileSecurityError("CreateDirectory", dataDir, made.error);
    if (!made.ok) {
      await refuseLinks(api, dataDir);
      owner = await ownerOf(api, dataDir);
    }
  }
  if (owner !== undefined) checkDataDirOwner(dataDir, owner, await selfOf(api));
  const r = await api.secure(dataDir);
  if (!r.ok) throw fileSecurityError("TreeResetNamedSecurityInfo", dataDir, r.error);
  await mkdirs.inside(dataDir);
}

/**
 * `bioapi enroll` on Windows, which may run before the install: a missing data directory is created as the
 * installer creates it (owned by Administrators, with the protected access list), and an existing one must already
 * be owned by SYSTEM or Administrators. Otherwise enroll would leave behind a folder its user owns, which the
 * service and the installer then refuse, or write the enrollment into a folder another user prepared.
 */
export async function claimDataDir(
  api: FileSecurityApi,
  dataDir: string,
  mkParent: (path: string) => Promise<unknown>,
): Promise<void> {
  await refuseLinks(api, dataDir);
  let owner = await ownerOf(api, dataDir);
  if (owner === undefined) {
    await mkParent(dataDir);
    const made = await api.createDir(dataDir);
    if (made.ok) return;
    if (made.error !== FILE_ERROR.ALREADY_EXISTS) throw fileSecurityError("CreateDirectory", dataDir, made.error);
    await refuseLinks(api, dataDir);
    owner = await ownerOf(api, dataDir);
  }
  if (owner === undefined) return;
  checkDataDirOwner(dataDir, owner, await selfOf(api));
  // Owned by this account but not by Administrators: made by a process of the same user, elevated or not (UAC is
  // not a boundary), so reset it as install does before the enrollment goes in; entries added inside go too.
  if (!TRUSTED_OWNERS.has(owner.toUpperCase())) {
    const r = await api.secure(dataDir);
    if (!r.ok) throw fileSecurityError("TreeResetNamedSecurityInfo", dataDir, r.error);
  }
}

async function refuseLinks(api: FileSecurityApi, dataDir: string): Promise<void> {
  const link = await api.linkOnPath(dataDir);
  if (link === undefined) return;
  throw new BioError(
    "SERVICE",
    `${link} is a junction or symbolic link, so ${dataDir} is not a folder of its own: its owner and access list would be those of wherever it points, which anyone who made the link can change.`,
    {
      hint: `Remove the link as an administrator (rmdir "${link}" removes a junction, not its target), then run the command again; or give --data-dir a real folder.`,
      context: { link },
    },
  );
}

async function selfOf(api: FileSecurityApi): Promise<string> {
  const r = await api.self();
  if (!r.ok) throw fileSecurityError("GetTokenInformation", "this process", r.error);
  return r.value;
}

/** The service's start check: the data directory must exist and be owned by SYSTEM or Administrators. */
export async function assertDataDirOwned(api: FileSecurityApi, dataDir: string): Promise<void> {
  await refuseLinks(api, dataDir);
  const owner = await ownerOf(api, dataDir);
  if (owner === undefined) throw fileSecurityError("GetNamedSecurityInfo", dataDir, FILE_ERROR.PATH_NOT_FOUND);
  checkDataDirOwner(dataDir, owner, await selfOf(api));
}
