import type { Exec, ExecResult } from "../../src/service/exec.ts";

const MISSING = "ERROR: The system was unable to find the specified registry key or value.\r\n";

/**
 * Plays reg.exe and powershell.exe over an in-memory registry, printing what the real tools print (the same shapes
 * as the fixtures in src/secrets/fixtures), so RegExeRegistry's argument builder and parser run end to end.
 * `denied` keys answer "Access is denied", as for a non-elevated user.
 */
export class FakeWindows {
  readonly values = new Map<string, { type: string; data: string }>();
  readonly calls: Array<{ file: string; args: string[]; input?: string }> = [];
  readonly securedKeys = new Set<string>();
  readonly denied = new Set<string>();

  readonly exec: Exec = async (file, args, options = {}) => {
    const input = typeof options.input === "string" ? options.input : undefined;
    this.calls.push({ file, args: [...args], ...(input !== undefined ? { input } : {}) });
    if (file === "reg.exe") return this.#reg([...args]);
    if (file === "powershell.exe") {
      const m = /\$path = '([^']+)'/.exec(input ?? "");
      if (m?.[1]) this.securedKeys.add(m[1].replace("HKLM:\\", "HKLM\\"));
      return { code: 0, stdout: "", stderr: "" };
    }
    return { code: 1, stdout: "", stderr: `${file}: not emulated` };
  };

  #reg(args: string[]): ExecResult {
    const [verb, key = "", flag, value = ""] = args;
    if (flag !== "/v" || !args.includes("/reg:64"))
      return { code: 1, stdout: "", stderr: "ERROR: Invalid syntax.\r\n" };
    if (this.denied.has(key)) return { code: 1, stdout: "", stderr: "ERROR: Access is denied.\r\n" };
    const id = `${key.toUpperCase()}\\${value.toUpperCase()}`;
    switch (verb) {
      case "query": {
        const v = this.values.get(id);
        if (!v) return { code: 1, stdout: "", stderr: MISSING };
        const long = key.replace(/^HKLM\\/i, "HKEY_LOCAL_MACHINE\\");
        return { code: 0, stdout: `\r\n${long}\r\n    ${value}    ${v.type}    ${v.data}\r\n\r\n`, stderr: "" };
      }
      case "add": {
        const type = args[args.indexOf("/t") + 1] ?? "REG_SZ";
        const data = args[args.indexOf("/d") + 1] ?? "";
        if (!args.includes("/f")) return { code: 1, stdout: "", stderr: "ERROR: would prompt\r\n" };
        this.values.set(id, { type, data });
        return { code: 0, stdout: "The operation completed successfully.\r\n", stderr: "" };
      }
      case "delete":
        if (!this.values.delete(id)) return { code: 1, stdout: "", stderr: MISSING };
        return { code: 0, stdout: "The operation completed successfully.\r\n", stderr: "" };
      default:
        return { code: 1, stdout: "", stderr: "ERROR: Invalid syntax.\r\n" };
    }
  }
}
