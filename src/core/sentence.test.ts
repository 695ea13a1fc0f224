import assert from "node:assert/strict";
import { test } from "node:test";
import { BioError } from "./errors.ts";
import { clause, sentence } from "./sentence.ts";

test("joins read as sentences: a stop before the hint, never two", () => {
  assert.equal(sentence('relation "x" does not exist'), 'relation "x" does not exist.');
  assert.equal(sentence("done."), "done.");
  assert.equal(sentence('it said "no."'), 'it said "no."');
  assert.equal(clause("401 bad_signature: the secret does not match."), "401 bad_signature: the secret does not match");
  const e = new BioError("DB_SCHEMA", 'A table went missing: relation "x" does not exist', { hint: "Check the user." });
  assert.equal(e.message, 'A table went missing: relation "x" does not exist. Check the user.');
  assert.equal(new BioError("DB_QUERY", "Failed.", { hint: "Retry." }).message, "Failed. Retry.");
});
