// The stand-in reg.exe of the Wine smoke test (scripts/test-wine.sh builds it into a Windows single executable).
// The connector must never start reg.exe: its command line is what process-creation auditing records. So this
// records every call in C:\smoke\reg-calls.log and fails, and the smoke test requires that log to stay empty.
const fs = require("node:fs");

const line = `${JSON.stringify({ at: new Date().toISOString(), cwd: process.cwd(), argv: process.argv.slice(2) })}\n`;
fs.appendFileSync("C:\\smoke\\reg-calls.log", line);
try {
  // Under Wine a Windows node cannot always write to an inherited pipe (EBADF); the log above is what counts.
  process.stderr.write("ERROR: stand-in reg.exe: the connector must not run reg.exe.\r\n");
} catch {}
process.exitCode = 1;
