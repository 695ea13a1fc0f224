import { naiveMsToWallClock, type WallClock, wallClockToNaiveMs } from "./zk-time.ts";

/**
 * The terminal's clock: host time plus an offset, shown as wall-clock time in the device's zone.
 * Real terminals drift and get set by hand, so the offset is the thing tests play with.
 */
export class DeviceClock {
  readonly timeZone: string;
  #offsetMs: number;
  readonly #format: Intl.DateTimeFormat;

  constructor(timeZone = "UTC", offsetMs = 0) {
    this.timeZone = timeZone;
    this.#offsetMs = offsetMs;
    // Throws a RangeError for an unknown zone, which is what we want at start-up.
    this.#format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  }

  /** Device clock minus host clock. */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  jump(ms: number): void {
    this.#offsetMs += ms;
  }

  /** The wall clock the device shows at host instant `hostMs`. */
  wallClockAt(hostMs: number): WallClock {
    const parts: Record<string, number> = {};
    for (const p of this.#format.formatToParts(new Date(hostMs + this.#offsetMs))) {
      if (p.type !== "literal") parts[p.type] = Number(p.value);
    }
    return {
      year: parts.year ?? 2000,
      month: parts.month ?? 1,
      day: parts.day ?? 1,
      hour: parts.hour ?? 0,
      minute: parts.minute ?? 0,
      second: parts.second ?? 0,
    };
  }

  now(): WallClock {
    return this.wallClockAt(Date.now());
  }

  /** Sets the clock so it now shows `target` (SET_TIME); exact except within a DST change. */
  set(target: WallClock): void {
    this.#offsetMs += wallClockToNaiveMs(target) - wallClockToNaiveMs(this.now());
  }

  /** Device wall clock on the zone-less time line (see wallClockToNaiveMs). */
  nowNaiveMs(): number {
    return wallClockToNaiveMs(this.now());
  }

  static fromNaiveMs(ms: number): WallClock {
    return naiveMsToWallClock(ms);
  }
}
