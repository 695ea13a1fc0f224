import type { ReadPlan } from "./presets.ts";

/** The cursor key of a partition: the partition value, prefixed by the table when a preset reads several. */
export function cursorKey(reader: { readonly plan: ReadPlan }, table: string, partition: string): string {
  return reader.plan.preset === "etimetracklite" ? `${table}:${partition}` : partition;
}

/** Whether a device cursor key belongs to this table (eTimeTrackLite keeps one table per month). */
export function ownKey(reader: { readonly plan: ReadPlan }, table: string, key: string): boolean {
  if (key.startsWith("#")) return false;
  return reader.plan.preset !== "etimetracklite" || key.startsWith(`${table}:`);
}
