import { readFileSync, writeFileSync } from "node:fs";
import { configJsonSchema } from "../src/config/config-schema.ts";
import { cloudRulesCopy } from "./config-rules-copy.ts";

const target = new URL("../docs/config.schema.json", import.meta.url);
writeFileSync(target, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
process.stdout.write(`Wrote ${target.pathname}\n`);

// The cloud may not import the connector, so it runs a copy of the rules; a test fails when the copy is stale.
const rules = new URL("../cloud/config-rules.ts", import.meta.url);
writeFileSync(rules, cloudRulesCopy(readFileSync(new URL("../src/config/config-rules.ts", import.meta.url), "utf8")));
process.stdout.write(`Wrote ${rules.pathname}\n`);
