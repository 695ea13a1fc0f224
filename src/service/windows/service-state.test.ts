import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../../core/logger.ts";
import { hostWindowsService, type ScmPort } from "./service-host.ts";
import {
  ERROR_CALL_NOT_IMPLEMENTED,
  SERVICE_ACCEPT,
  SERVICE_CONTROL,
  SERVICE_STATE,
  ServiceStateMachine,
  type ServiceStatusReport,
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
