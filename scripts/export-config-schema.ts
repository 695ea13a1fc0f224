import { writeFileSync } from "node:fs";
import { configJsonSchema } from "../src/config/config-schema.ts";

const target = new URL("../docs/config.schema.json", import.meta.url);
writeFileSync(target, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
process.stdout.write(`Wrote ${target.pathname}\n`);
