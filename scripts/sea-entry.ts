// Entry point of the single executable (bundled to CommonJS by scripts/package.ts). It dispatches like
// bin/bioapi.mjs, including the demo, the reference cloud and the simulator, which are bundled in so that an
// operator can try the product with nothing else installed. Heap flags come from the SEA config's execArgv.
import { main } from "../src/cli/main.ts";

async function start(): Promise<void> {
  const argv = process.argv.slice(2);
  const [command, ...rest] = argv;
  const simulated = command === "sim" && rest[0] === "zk";
  const code =
    command === "cloud"
      ? await (await import("../cloud/cli.ts")).main(rest)
      : command === "demo"
        ? await (await import("../demo/demo.ts")).main(rest)
        : simulated
          ? await (await import("../sim/zk/cli.ts")).main(rest.slice(1))
          : await main(argv);
  process.exitCode = code;
  if (command === "run" || command === "demo" || command === "monitor" || simulated || command === "cloud")
    process.exit(code);
}

start().catch((error: unknown) => {
  process.stderr.write(`bioapi: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
