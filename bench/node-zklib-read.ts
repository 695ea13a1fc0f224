/**
 * One node-zklib read of a terminal, in its own process: node-zklib can throw outside its promise chain and take
 * the process down, which must not end the benchmark. Prints {records, seconds} or {error} as JSON.
 */
process.env.TZ = "UTC";

import ZKLib from "node-zklib";

const [port, timeoutMs] = process.argv.slice(2).map(Number);
const zk = new ZKLib("127.0.0.1", port ?? 4370, timeoutMs ?? 10_000, 0);
try {
  await zk.createSocket();
  const t0 = performance.now();
  const logs = await zk.getAttendances();
  const seconds = (performance.now() - t0) / 1000;
  await zk.disconnect();
  process.stdout.write(
    `${JSON.stringify({ records: logs.data.length, seconds, error: logs.err ? String(logs.err) : null })}\n`,
  );
} catch (error) {
  process.stdout.write(`${JSON.stringify({ records: 0, seconds: 0, error: String(error) })}\n`);
}
process.exit(0);
