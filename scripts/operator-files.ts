/**
 * What the operator zip holds besides the executable: its README and the operator's documents. One list, read by
 * scripts/package.ts to build the zip and by the test that checks every command and option they name.
 */
export const OPERATOR_FILES: readonly { readonly from: string; readonly to: string }[] = [
  { from: "packaging/README-operators.md", to: "README.md" },
  { from: "packaging/config.sample.json", to: "config.sample.json" },
  { from: "docs/operations.md", to: "docs/operations.md" },
  { from: "docs/configuration.md", to: "docs/configuration.md" },
  { from: "docs/terminals.md", to: "docs/terminals.md" },
  { from: "docs/config.schema.json", to: "docs/config.schema.json" },
];
