/**
 * `42 s`, `17 min`, `5 h 30 min`: one rounding for every duration the operator reads (log, `bioapi status`, the
 * status page, doctor). The status page runs this very function in the browser (status-page.ts embeds its source),
 * so its table and its banner cannot disagree; keep it free of imports and types beyond the parameter.
 */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min`;
  return m % 60 === 0 ? `${Math.floor(m / 60)} h` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
