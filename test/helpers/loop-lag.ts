const TICK_MS = 10;

export interface LoopLag extends Disposable {
  /** The sum of every tick's lateness so far: wall time this process could not run its timers on time. */
  readonly totalMs: number;
  /** The latest single tick so far. */
  readonly maxMs: number;
}

/**
 * Measures how late this process's timers run from now on. A wall-clock bound on work done in this process (the
 * connector, the simulator and the cloud all run in the test process) holds on an idle machine as written; on a
 * busy one the same work is later by about the lag measured over it, so the bound adds that, measured in the same
 * run, instead of a guessed allowance.
 */
export function loopLag(): LoopLag {
  let last = performance.now();
  let totalMs = 0;
  let maxMs = 0;
  const sample = () => {
    const now = performance.now();
    const late = Math.max(0, now - last - TICK_MS);
    totalMs += late;
    maxMs = Math.max(maxMs, late);
    last = now;
  };
  const timer = setInterval(sample, TICK_MS);
  timer.unref();
  return {
    get totalMs() {
      sample();
      return totalMs;
    },
    get maxMs() {
      sample();
      return maxMs;
    },
    [Symbol.dispose]() {
      clearInterval(timer);
    },
  };
}
