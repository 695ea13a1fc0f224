import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { type Logger, silentLogger } from "../../core/logger.ts";
import type { ScmPort, ServiceStatusReport } from "../../platform/windows/scm-port.ts";
import { EXIT_START_DEADLINE, EXIT_STOP_DEADLINE, hostWindowsService, type RunningService } from "./service-host.ts";
import {
  ERROR_CALL_NOT_IMPLEMENTED,
  ERROR_SERVICE_SPECIFIC_ERROR,
  SERVICE_ACCEPT,
  SERVICE_CONTROL,
  SERVICE_STATE,
  ServiceStateMachine,
} from "./service-state.ts";

const S = SERVICE_STATE;

test("state machine: START_PENDING with growing checkpoints, RUNNING accepting stop/shutdown, STOP_PENDING, STOPPED", () => {
  const m = new ServiceStateMachine({ startWaitHintMs: 60_000, stopWaitHintMs: 30_000 });
  const start = m.starting();
  assert.deepEqual(
    [start.currentState, start.checkPoint, start.waitHintMs, start.controlsAccepted],
    [S.START_PENDING, 1, 60_000, 0],
  );
  assert.equal(m.progress()?.checkPoint, 2);
  assert.equal(m.progress()?.checkPoint, 3);
  const { reports, stopNow } = m.running();
  assert.equal(stopNow, false);
  assert.equal(reports[0]?.currentState, S.RUNNING);
  assert.equal(reports[0]?.checkPoint, 0);
  assert.equal(
    reports[0]?.controlsAccepted,
    SERVICE_ACCEPT.STOP | SERVICE_ACCEPT.SHUTDOWN | SERVICE_ACCEPT.PRESHUTDOWN,
  );
  assert.equal(m.progress(), null, "no checkpoints while running");
  assert.equal(m.control(SERVICE_CONTROL.INTERROGATE).report.currentState, S.RUNNING);
  assert.equal(m.control(0x80).result, ERROR_CALL_NOT_IMPLEMENTED);
  const stop = m.control(SERVICE_CONTROL.STOP);
  assert.equal(stop.action, "stop");
  assert.deepEqual(
    [stop.report.currentState, stop.report.waitHintMs, stop.report.controlsAccepted],
    [S.STOP_PENDING, 30_000, 0],
  );
  assert.equal(m.control(SERVICE_CONTROL.SHUTDOWN).action, "report", "a second stop does not start another");
  assert.equal(m.progress()?.checkPoint, 2);
  const stopped = m.stopped(0);
  assert.deepEqual([stopped.currentState, stopped.win32ExitCode, stopped.serviceSpecificExitCode], [S.STOPPED, 0, 0]);
});

test("state machine: a stop during start-up is deferred, then honoured; a failure exit becomes a service-specific error", () => {
  const m = new ServiceStateMachine({ startWaitHintMs: 1000, stopWaitHintMs: 1000 });
  m.starting();
  assert.equal(m.control(SERVICE_CONTROL.PRESHUTDOWN).action, "deferred");
  const { reports, stopNow } = m.running();
  assert.equal(stopNow, true);
  assert.deepEqual(
    reports.map((r) => r.currentState),
    [S.RUNNING, S.STOP_PENDING],
  );
  const failed = m.stopped(70);
  assert.deepEqual([failed.win32ExitCode, failed.serviceSpecificExitCode], [1066, 70]);
});

/** Plays the SCM: calls ServiceMain, later sends control codes, returns from the dispatcher after STOPPED. */
class FakeScm implements ScmPort {
  readonly reports: ServiceStatusReport[] = [];
  #control: ((code: number) => number) | undefined;
  #stopped: () => void = () => undefined;

  dispatch(_name: string, handlers: { main(): void; control(code: number): number }): Promise<void> {
    this.#control = handlers.control;
    setImmediate(() => handlers.main());
    return new Promise((resolve) => {
      this.#stopped = resolve;
    });
  }

  setStatus(report: ServiceStatusReport): void {
    this.reports.push(report);
    if (report.currentState === S.STOPPED) this.#stopped();
  }

  send(code: number): number {
    return this.#control?.(code) ?? -1;
  }

  states(): number[] {
    return this.reports.map((r) => r.currentState).filter((s, i, a) => a[i - 1] !== s);
  }
}

test("service host: start, run, stop on the SCM's request; exit code 0", async () => {
  const scm = new FakeScm();
  let stopped = false;
  const done = hostWindowsService({
    name: "CamsBioApi",
    scm,
    logger: silentLogger,
    checkpointEveryMs: 10,
    start: async () => {
      await new Promise((r) => setTimeout(r, 50));
      return {
        ended: new Promise<number>(() => undefined),
        stop: async () => {
          await new Promise((r) => setTimeout(r, 40));
          stopped = true;
        },
      };
    },
  });
  while (!scm.reports.some((r) => r.currentState === S.RUNNING)) await new Promise((r) => setTimeout(r, 5));
  assert.ok(scm.reports.filter((r) => r.currentState === S.START_PENDING).length >= 2, "checkpoints while starting");
  assert.equal(scm.send(SERVICE_CONTROL.STOP), 0);
  assert.equal(await done, 0);
  assert.equal(stopped, true);
  assert.deepEqual(scm.states(), [S.START_PENDING, S.RUNNING, S.STOP_PENDING, S.STOPPED]);
});

test("service host: a start failure and a fatal end are reported STOPPED with an error, for the SCM's recovery", async () => {
  const failing = new FakeScm();
  const code = await hostWindowsService({
    name: "CamsBioApi",
    scm: failing,
    logger: silentLogger,
    start: () => Promise.reject(new Error("not enrolled")),
  });
  assert.equal(code, 2);
  assert.deepEqual(failing.states(), [S.START_PENDING, S.STOPPED]);
  assert.equal(failing.reports.at(-1)?.serviceSpecificExitCode, 2);

  const crashing = new FakeScm();
  const crashed = await hostWindowsService({
    name: "CamsBioApi",
    scm: crashing,
    logger: silentLogger,
    start: async () => ({
      ended: new Promise<number>((r) => setTimeout(() => r(70), 20)),
      stop: async () => undefined,
    }),
  });
  assert.equal(crashed, 70);
  assert.deepEqual(
    [crashing.reports.at(-1)?.win32ExitCode, crashing.reports.at(-1)?.serviceSpecificExitCode],
    [1066, 70],
  );
});

/** Every log line as "level: message", to check that a deadline names its phase and its bound. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger: Logger & { lines: string[] } = {
    lines,
    debug: (m) => lines.push(`debug: ${m}`),
    info: (m) => lines.push(`info: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
    child: () => logger,
  };
  return logger;
}

/** Lets FakeScm call ServiceMain (setImmediate, not mocked) and the promise callbacks after it run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** Timers under the test's control: a deadline of minutes passes in one `tick`, with no real wait. */
function fakeTimers(t: TestContext) {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  return t.mock.timers;
}

test("service host: a start that never settles reports STOPPED at its deadline, names it, and stops checkpointing", async (t) => {
  const timers = fakeTimers(t);
  const scm = new FakeScm();
  const logger = recordingLogger();
  const done = hostWindowsService({
    name: "CamsBioApi",
    scm,
    logger,
    startDeadlineMs: 120_000,
    start: () => new Promise<RunningService>(() => undefined),
  });
  await settle();
  timers.tick(119_999);
  assert.equal(scm.reports.at(-1)?.currentState, S.START_PENDING, "still within its deadline");
  assert.ok(scm.reports.length > 2, "checkpoints while within the deadline");
  timers.tick(1);
  assert.deepEqual(scm.states(), [S.START_PENDING, S.STOPPED]);
  const last = scm.reports.at(-1);
  assert.deepEqual(
    [last?.win32ExitCode, last?.serviceSpecificExitCode],
    [ERROR_SERVICE_SPECIFIC_ERROR, EXIT_START_DEADLINE],
  );
  assert.equal(await done, EXIT_START_DEADLINE, "the host returns, so the process can end");
  const count = scm.reports.length;
  timers.tick(60_000);
  assert.equal(scm.reports.length, count, "no checkpoint after STOPPED");
  assert.ok(
    logger.lines.some((l) => l.startsWith("error: The service did not finish starting within 120 s;")),
    logger.lines.join("\n"),
  );
});

test("service host: a start that settles after its deadline never reports RUNNING; the late service is stopped", async (t) => {
  const timers = fakeTimers(t);
  const scm = new FakeScm();
  const logger = recordingLogger();
  let started: (s: RunningService) => void = () => undefined;
  let stops = 0;
  const done = hostWindowsService({
    name: "CamsBioApi",
    scm,
    logger,
    startDeadlineMs: 1_000,
    start: () =>
      new Promise<RunningService>((resolve) => {
        started = resolve;
      }),
  });
  await settle();
  timers.tick(1_000);
  assert.equal(scm.reports.at(-1)?.currentState, S.STOPPED, "STOPPED at the deadline");
  assert.equal(await done, EXIT_START_DEADLINE);
  started({
    ended: new Promise<number>(() => undefined),
    stop: async () => {
      stops++;
    },
  });
  await settle();
  assert.ok(!scm.reports.some((r) => r.currentState === S.RUNNING), "no RUNNING after STOPPED");
  assert.equal(scm.reports.at(-1)?.currentState, S.STOPPED);
  assert.equal(stops, 1, "the late-started service is stopped again");
  assert.ok(logger.lines.some((l) => l.includes("finished starting after its deadline")));
});

test("service host: a stop that never settles reports STOPPED at its deadline with its own exit code", async (t) => {
  const timers = fakeTimers(t);
  const scm = new FakeScm();
  const logger = recordingLogger();
  const done = hostWindowsService({
    name: "CamsBioApi",
    scm,
    logger,
    stopDeadlineMs: 45_000,
    start: async () => ({
      ended: new Promise<number>(() => undefined),
      stop: () => new Promise<void>(() => undefined),
    }),
  });
  await settle();
  assert.equal(scm.reports.at(-1)?.currentState, S.RUNNING);
  assert.equal(scm.send(SERVICE_CONTROL.STOP), 0);
  timers.tick(44_999);
  assert.equal(scm.reports.at(-1)?.currentState, S.STOP_PENDING, "still within its deadline");
  timers.tick(1);
  assert.deepEqual(scm.states(), [S.START_PENDING, S.RUNNING, S.STOP_PENDING, S.STOPPED]);
  assert.equal(scm.reports.at(-1)?.serviceSpecificExitCode, EXIT_STOP_DEADLINE);
  assert.equal(await done, EXIT_STOP_DEADLINE);
  const count = scm.reports.length;
  timers.tick(60_000);
  assert.equal(scm.reports.length, count, "no checkpoint after STOPPED");
  assert.ok(logger.lines.some((l) => l.startsWith("error: The service did not finish stopping within 45 s;")));
});
