import { IDENTIFIER } from "../../config/config-schema.ts";
import { BioError } from "../../core/errors.ts";

/** Second line of defence after the config schema: a name that reaches SQL is a plain identifier or nothing. */
export function checkIdentifier(name: string): string {
  if (!IDENTIFIER.test(name)) {
    throw new BioError("IDENTIFIER_INVALID", `Refusing the SQL identifier ${JSON.stringify(name.slice(0, 80))}.`, {
      hint: "Table and column names may hold only letters, digits and _, and start with a letter or _.",
    });
  }
  return name;
}
