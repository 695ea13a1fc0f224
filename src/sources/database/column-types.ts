/** Engine type names of columns holding numbers (ids, device numbers, epoch times): bound and compared as numbers. */
export const NUMERIC_TYPE = /int|long|byte|numeric|decimal|serial|number/;

const ZONED_TYPE = /with time zone|timestamptz|datetimeoffset|^timestamp$/;

/** How a time column's values are read: a wall-clock time in the source's zone, or an instant. */
export function timeSemantics(engine: string, type: string): "naive" | "instant" {
  // MySQL's TIMESTAMP is an instant (kept in UTC, shown in the session zone); PostgreSQL's bare "timestamp" is not.
  if (type === "timestamp") return engine === "mysql" ? "instant" : "naive";
  return ZONED_TYPE.test(type) ? "instant" : "naive";
}
