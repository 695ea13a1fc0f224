import type { CursorValue } from "../../store/store.ts";

/**
 * Ids missing below a table's high-water mark, as inclusive ranges. A writer that took id 100 and commits after id
 * 101 was read leaves 100 missing for as long as its transaction lasts; a rolled-back insert or a sequence's cached
 * values leave it missing for good. The book cannot tell the two apart, so a gap is re-checked until its row appears
 * or it has been open for the late-row window, and then given up, counted and reported.
 */
export interface Gap {
  readonly lo: number;
  readonly hi: number;
  /** Wall-clock ms when the gap was first seen. */
  readonly since: number;
  /** The table's poll count when it was first seen: a wall clock set forward does not age a gap by itself. */
  readonly sincePoll: number;
}

/** What a table's sweep keeps between polls and across restarts (one cursor value, committed with the punches). */
export interface SweepState {
  /** Every id at or below this was seen, is in `gaps`, or was given up. */
  readonly high: number;
  readonly gaps: readonly Gap[];
  /** Polls of this table so far (persisted with the state, so it only ever lags the truth). */
  readonly polls: number;
  /** Ids given up, ever. */
  readonly expired: number;
  readonly lastExpiredAt: number | null;
}

/** At most this many ranges are kept: past it, the oldest are given up early (and counted as given up). */
export const MAX_GAPS = 10_000;
/** At most this many ranges are re-checked per poll, oldest first, in turn: one query with bounded parameters. */
export const GAPS_PER_CHECK = 400;

export function emptySweep(high = 0): SweepState {
  return { high, gaps: [], polls: 0, expired: 0, lastExpiredAt: null };
}

/** The ranges of ids in (high, …) absent from `ids` (sorted ascending, integers), up to the largest of them. */
export function gapsBetween(high: number, ids: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let prev = high;
  for (const id of ids) {
    if (id <= prev) continue;
    if (id > prev + 1) out.push([prev + 1, id - 1]);
    prev = id;
  }
  return out;
}

export class GapBook {
  #high: number;
  #gaps: Gap[];
  #polls: number;
  #expired: number;
  #lastExpiredAt: number | null;
  /** Where the next check starts in the gap list: with more gaps than one check takes, each gets its turn. */
  #turn = 0;

  constructor(state: SweepState) {
    this.#high = state.high;
    this.#gaps = [...state.gaps];
    this.#polls = state.polls;
    this.#expired = state.expired;
    this.#lastExpiredAt = state.lastExpiredAt;
  }

  get high(): number {
    return this.#high;
  }

  get open(): number {
    return this.#gaps.length;
  }

  /** Ids in the open gaps (a range counts each id). */
  get openIds(): number {
    let n = 0;
    for (const g of this.#gaps) n += g.hi - g.lo + 1;
    return n;
  }

  get expired(): number {
    return this.#expired;
  }

  get lastExpiredAt(): number | null {
    return this.#lastExpiredAt;
  }

  tick(): void {
    this.#polls++;
  }

  /**
   * A page of ids read above the high-water mark (sorted ascending): the ids skipped on the way become gaps and the
   * mark moves to the largest. Returns the ranges given up because the book was full.
   */
  advance(ids: readonly number[], now: number): Gap[] {
    for (const [lo, hi] of gapsBetween(this.#high, ids)) {
      this.#gaps.push({ lo, hi, since: now, sincePoll: this.#polls });
    }
    const top = ids.at(-1);
    if (top !== undefined && top > this.#high) this.#high = top;
    if (this.#gaps.length <= MAX_GAPS) return [];
    const dropped = this.#gaps.splice(0, this.#gaps.length - MAX_GAPS);
    this.#giveUp(dropped, now);
    return dropped;
  }

  /** The ranges to look for in this poll: at most GAPS_PER_CHECK, taking turns when there are more. */
  due(): Gap[] {
    if (this.#gaps.length <= GAPS_PER_CHECK) return [...this.#gaps];
    if (this.#turn >= this.#gaps.length) this.#turn = 0;
    const out = this.#gaps.slice(this.#turn, this.#turn + GAPS_PER_CHECK);
    this.#turn += out.length;
    return out;
  }

  /** Ids that turned up: each splits or closes its range. */
  found(ids: Iterable<number>): void {
    const sorted = [...new Set(ids)].sort((a, b) => a - b);
    if (sorted.length === 0) return;
    const next: Gap[] = [];
    for (const g of this.#gaps) {
      let lo = g.lo;
      for (const id of sorted) {
        if (id < lo || id > g.hi) continue;
        if (id > lo) next.push({ ...g, lo, hi: id - 1 });
        lo = id + 1;
      }
      if (lo <= g.hi) next.push({ ...g, lo });
    }
    this.#gaps = next;
  }

  /**
   * Gaps open for longer than the window, by the wall clock and by the polls made since (at `pollIntervalMs`, a poll
   * count under-states the time passed, never over-states it), are given up and returned.
   */
  expire(now: number, windowMs: number, pollIntervalMs: number): Gap[] {
    const pollsNeeded = Math.ceil(windowMs / Math.max(1, pollIntervalMs));
    const out: Gap[] = [];
    const keep: Gap[] = [];
    for (const g of this.#gaps) {
      // A clock set back would keep a gap open for ever; from then on its age counts from now.
      const since = Math.min(g.since, now);
      if (now - since >= windowMs && this.#polls - g.sincePoll >= pollsNeeded) out.push(g);
      else keep.push(since === g.since ? g : { ...g, since });
    }
    this.#gaps = keep;
    this.#giveUp(out, now);
    return out;
  }

  /** The ids went backwards (a table restored or renumbered): start again from `high`, keeping the counters. */
  rebase(high: number): void {
    this.#high = high;
    this.#gaps = [];
  }

  #giveUp(gaps: readonly Gap[], now: number): void {
    if (gaps.length === 0) return;
    for (const g of gaps) this.#expired += g.hi - g.lo + 1;
    this.#lastExpiredAt = now;
  }

  state(): SweepState {
    return {
      high: this.#high,
      gaps: this.#gaps,
      polls: this.#polls,
      expired: this.#expired,
      lastExpiredAt: this.#lastExpiredAt,
    };
  }

  /** As a cursor value: compact arrays, since it is rewritten with every page. */
  toCursor(): CursorValue {
    return {
      v: 1,
      high: this.#high,
      polls: this.#polls,
      expired: this.#expired,
      lastExpiredAt: this.#lastExpiredAt,
      gaps: this.#gaps.map((g) => [g.lo, g.hi, g.since, g.sincePoll]),
    };
  }
}

/** The sweep state in a cursor value, or undefined when there is none (or it is not one this version wrote). */
export function sweepFromCursor(value: CursorValue | undefined): SweepState | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, CursorValue>;
  if (v.v !== 1 || !isCount(v.high) || !isCount(v.polls) || !isCount(v.expired) || !Array.isArray(v.gaps))
    return undefined;
  const gaps: Gap[] = [];
  for (const g of v.gaps) {
    if (!Array.isArray(g) || g.length !== 4 || !g.every((n) => typeof n === "number" && Number.isSafeInteger(n)))
      return undefined;
    const [lo, hi, since, sincePoll] = g as number[] as [number, number, number, number];
    if (lo > hi) return undefined;
    gaps.push({ lo, hi, since, sincePoll });
  }
  const last = v.lastExpiredAt;
  return {
    high: v.high,
    polls: v.polls,
    expired: v.expired,
    lastExpiredAt: typeof last === "number" ? last : null,
    gaps,
  };
}

function isCount(value: CursorValue | undefined): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** "1201–1205, 1300 and 3 more": the ids of given-up gaps, short enough for one log line. */
export function describeGaps(gaps: readonly Gap[], shown = 5): string {
  const parts = gaps.slice(0, shown).map((g) => (g.lo === g.hi ? String(g.lo) : `${g.lo}–${g.hi}`));
  return gaps.length > shown ? `${parts.join(", ")} and ${gaps.length - shown} more` : parts.join(", ");
}
