import { createServer, type Socket, connect as tcpConnect } from "node:net";

export interface TcpProxy extends AsyncDisposable {
  readonly port: number;
  /** Connections carried so far. */
  readonly accepted: number;
  /** Destroys every open connection at once, both ends, as a pulled cable or a crashed process would look. */
  cut(): void;
}

/** Forwards 127.0.0.1:<port> to a target, so a test can kill a client's socket without touching the client. */
export async function tcpProxy(targetPort: number): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let accepted = 0;
  const server = createServer((downstream) => {
    accepted++;
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    for (const s of [downstream, upstream]) {
      open.add(s);
      s.on("close", () => open.delete(s));
      s.on("error", () => {});
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    downstream.on("close", () => upstream.destroy());
    upstream.on("close", () => downstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const cut = () => {
    for (const s of open) s.resetAndDestroy();
  };
  return {
    port,
    get accepted() {
      return accepted;
    },
    cut,
    [Symbol.asyncDispose]: async () => {
      cut();
      await new Promise((r) => server.close(r));
    },
  };
}
