import { loadKoffi } from "../../src/platform/native.ts";

/**
 * systemd's end of sd_notify, for tests: a bound AF_UNIX datagram socket read without blocking. Written against
 * libc directly (bind + recv), independent of the product's sendto path.
 */
export class FakeNotifySocket {
  readonly messages: Array<{ at: number; text: string }> = [];
  readonly #close: () => void;
  readonly #timer: NodeJS.Timeout;

  private constructor(close: () => void, timer: NodeJS.Timeout) {
    this.#close = close;
    this.#timer = timer;
  }

  static async bind(path: string): Promise<FakeNotifySocket> {
    const koffi = await loadKoffi();
    const libc = koffi.load("libc.so.6");
    const socket = libc.func("int socket(int, int, int)");
    const bind = libc.func("int bind(int, const void *, uint32_t)");
    const recv = libc.func("intptr_t recv(int, _Out_ uint8_t *buf, size_t, int)");
    const close = libc.func("int close(int)");
    const SOCK_DGRAM_NONBLOCK = 2 | 0o4000;
    const fd = socket(1, SOCK_DGRAM_NONBLOCK, 0) as number;
    const name = Buffer.from(`${path}\0`);
    const addr = Buffer.alloc(2 + name.length);
    addr.writeUInt16LE(1, 0);
    name.copy(addr, 2);
    if ((bind(fd, addr, addr.length) as number) !== 0) throw new Error(`bind ${path} failed: errno ${koffi.errno()}`);
    let socketRef: FakeNotifySocket | undefined;
    const buf = Buffer.alloc(4096);
    const timer = setInterval(() => {
      for (;;) {
        const n = Number(recv(fd, buf, buf.length, 0));
        if (n <= 0) break;
        socketRef?.messages.push({ at: Date.now(), text: buf.subarray(0, n).toString("utf8") });
      }
    }, 10);
    socketRef = new FakeNotifySocket(() => close(fd), timer);
    return socketRef;
  }

  count(prefix: string): number {
    return this.messages.filter((m) => m.text.split("\n").some((l) => l.startsWith(prefix))).length;
  }

  [Symbol.dispose](): void {
    clearInterval(this.#timer);
    this.#close();
  }
}
