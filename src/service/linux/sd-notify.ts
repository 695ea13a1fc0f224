import { BioError } from "../../core/errors.ts";
import { loadKoffi } from "../../platform/native.ts";

/**
 * sd_notify(3) without libsystemd: one AF_UNIX datagram per message to $NOTIFY_SOCKET. Node has no unix datagram
 * sockets, so the three libc calls go through koffi (already a dependency for Windows). Sent from the main process,
 * so the unit can keep NotifyAccess=main.
 */
export interface NotifyTransport {
  send(message: string): Promise<void>;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;

/** struct sockaddr_un for a path; "@name" is an abstract-namespace socket (a leading NUL byte, no terminator). */
export function sockaddrUn(path: string): Buffer {
  const abstract = path.startsWith("@");
  const name = Buffer.from(abstract ? `\0${path.slice(1)}` : `${path}\0`, "utf8");
  if (name.length > 108) throw new BioError("SERVICE", `NOTIFY_SOCKET path is too long (${name.length} bytes).`);
  const addr = Buffer.alloc(2 + name.length);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, 2);
  return addr;
}

export async function libcNotifyTransport(socketPath: string): Promise<NotifyTransport> {
  const koffi = await loadKoffi();
  const libc = koffi.load("libc.so.6");
  const socket = libc.func("int socket(int domain, int type, int protocol)");
  const sendto = libc.func(
    "intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)",
  );
  const close = libc.func("int close(int fd)");
  const addr = sockaddrUn(socketPath);
  return {
    async send(message) {
      const fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number;
      if (fd < 0) throw new BioError("SERVICE", `socket(AF_UNIX) failed (errno ${koffi.errno()}).`);
      try {
        const data = Buffer.from(message, "utf8");
        const sent = Number(sendto(fd, data, data.length, MSG_NOSIGNAL, addr, addr.length));
        if (sent < 0) throw new BioError("SERVICE", `sd_notify to ${socketPath} failed (errno ${koffi.errno()}).`);
      } finally {
        close(fd);
      }
    },
  };
}

export interface SystemdNotifierOptions {
  readonly transport: NotifyTransport;
  /** $WATCHDOG_USEC: systemd kills the unit if no WATCHDOG=1 arrives within it. */
  readonly watchdogUs: number | null;
  /** Pings only while this says the connector is making progress: a wedged-but-ticking process gets caught too. */
  readonly healthy: () => boolean;
  readonly onError?: (error: unknown) => void;
}

export class SystemdNotifier {
  readonly #o: SystemdNotifierOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SystemdNotifierOptions) {
    this.#o = options;
  }

  /** From the environment systemd gives a Type=notify unit; null when not run by systemd. */
  static async fromEnv(
    env: NodeJS.ProcessEnv,
    healthy: () => boolean,
    onError?: (error: unknown) => void,
  ): Promise<SystemdNotifier | null> {
    const socketPath = env.NOTIFY_SOCKET;
    if (!socketPath || process.platform !== "linux") return null;
    const usec = Number(env.WATCHDOG_USEC);
    const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === process.pid;
    return new SystemdNotifier({
      transport: await libcNotifyTransport(socketPath),
      watchdogUs: Number.isFinite(usec) && usec > 0 && forUs ? usec : null,
      healthy,
      ...(onError ? { onError } : {}),
    });
  }

  #send(message: string): Promise<void> {
    return this.#o.transport.send(message).catch((error: unknown) => this.#o.onError?.(error));
  }

  /** READY=1 once the connector has started; then watchdog pings at half the interval, as sd_watchdog_enabled(3) advises. */
  async ready(status: string): Promise<void> {
    await this.#send(`READY=1\nSTATUS=${status}\nMAINPID=${process.pid}`);
    if (this.#o.watchdogUs === null) return;
    const everyMs = Math.max(50, Math.floor(this.#o.watchdogUs / 2000));
    this.#timer = setInterval(() => {
      if (this.#o.healthy()) void this.#send("WATCHDOG=1");
    }, everyMs);
    this.#timer.unref();
  }

  async status(text: string): Promise<void> {
    await this.#send(`STATUS=${text}`);
  }

  async stopping(): Promise<void> {
    clearInterval(this.#timer);
    await this.#send("STOPPING=1\nSTATUS=Stopping");
  }
}
