/** The server's options, `key=value` a line after `GET OPTION FROM: <SN>`: ATTLOGStamp, Delay, TransInterval… */
export type AdmsOptions = Readonly<Record<string, string>>;

/**
 * Reads a handshake answer. Servers write CRLF or LF, pad with spaces, send keys with empty values, and put `=` inside
 * values (TransFlag lists, base64): a key ends at the first `=`. The header line and anything without `=` are skipped.
 */
export function parseAdmsOptions(text: string): AdmsOptions {
  const options: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const eq = line.indexOf("=");
    if (eq <= 0 || /^GET OPTION FROM/i.test(line)) continue;
    options[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return options;
}

export interface AdmsCommand {
  readonly id: string;
  readonly command: string;
}

/** A getrequest answer: `OK`, or one `C:<id>:<command>` a line (the command may hold `:` itself). */
export function parseCommands(text: string): AdmsCommand[] {
  const commands: AdmsCommand[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const match = /^C:([^:]+):(.*)$/.exec(raw.trim());
    if (match) commands.push({ id: (match[1] as string).trim(), command: (match[2] as string).trim() });
  }
  return commands;
}
