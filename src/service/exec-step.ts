/** A tool to run: PowerShell, systemctl. */
export interface ExecStep {
  readonly file: string;
  readonly args: readonly string[];
  readonly input?: string;
  /** Exit codes that mean "already so". */
  readonly accept?: readonly number[];
  readonly why: string;
}
