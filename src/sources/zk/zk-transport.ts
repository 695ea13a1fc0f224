import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createConnection, type Socket } from "node:net";
import { BioError } from "../../core/errors.ts";
import { encodeTcpFrame, TcpFrameReader } from "./zk-codec.ts";

export const ZK_TRANSPORTS = ["tcp", "udp"] as const;
export type ZkTransportKind = (typeof ZK_TRANSPORTS)[number];

/** One ZK packet in, one out: TCP framing or UDP datagrams stay below this line. */
export interface ZkTransport {
  readonly kind: ZkTransportKind;
  send(packet: Buffer): void;
  /** Idempotent. */
  close(): void;
  /** Bytes received at the ZK level (TCP prefixes included), for wire-cost figures. */
  readonly bytesReceived: number;
  readonly bytesSent: number;
  /** Bytes written but not yet taken by the network; over TCP a peer that stops reading makes this grow. */
  readonly pendingBytes: number;
}

/** How long a closing TCP socket may take to flush its last packets before it is destroyed. */
const CLOSE_FLUSH_MS = 500;

export interface TransportHandlers {
  onPacket(packet: Buffer): void;
  /** Called once when the link ends for any reason other than our own close(). */
  onClose(error: BioError): void;
}

export interface OpenTransportOptions {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  /** Names the device in errors: its serial when known, else host:port. */
  readonly label: string;
}

function linkError(error: NodeJS.ErrnoException, options: OpenTransportOptions, kind: ZkTransportKind): BioError {
  const where = `${options.label} (${options.host}:${options.port}/${kind})`;
  switch (error.code) {
    case "ECONNREFUSED":
      return new BioError("DEVICE_UNREACHABLE", `Connection to terminal ${where} was refused.`, {
        cause: error,
        hint: `Check the port (usually 4370) and the transport: the terminal may listen on ${kind === "tcp" ? "UDP" : "TCP"} only, or another program holds its only connection.`,
      });
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new BioError("DEVICE_UNREACHABLE", `Terminal ${where} is unreachable (${error.code}).`, {
        cause: error,
        hint: "Check the terminal's IP address in the config, that it is powered on, and that this machine can reach its network.",
      });
    default:
      return new BioError("DEVICE_UNREACHABLE", `Link to terminal ${where} failed: ${error.code ?? error.message}.`, {
        cause: error,
        hint: "Check the network between this machine and the terminal.",
      });
  }
}

export async function openTcpTransport(
  options: OpenTransportOptions,
  handlers: TransportHandlers,
): Promise<ZkTransport> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = createConnection({ host: options.host, port: options.port, noDelay: true });
    const timer = setTimeout(() => {
      options.signal.removeEventListener("abort", onAbort);
      s.destroy();
      reject(
        new BioError(
          "DEVICE_TIMEOUT",
          `Terminal ${options.label} (${options.host}:${options.port}/tcp) did not accept a connection within ${options.timeoutMs} ms.`,
          {
            hint: "Check the IP address and that nothing (a firewall, a VLAN) blocks TCP port 4370; some terminals speak UDP only.",
          },
        ),
      );
    }, options.timeoutMs);
    const onAbort = () => {
      clearTimeout(timer);
      s.destroy();
      reject(options.signal.reason);
    };
    options.signal.addEventListener("abort", onAbort, { once: true });
    s.once("connect", () => {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", (error) => {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      reject(linkError(error, options, "tcp"));
    });
  });
  socket.setKeepAlive(true, 30_000);
  const reader = new TcpFrameReader();
  let closed = false;
  const transport = {
    kind: "tcp" as const,
    bytesReceived: 0,
    bytesSent: 0,
    get pendingBytes() {
      return socket.writableLength;
    },
    send(packet: Buffer) {
      if (closed) return;
      const frame = encodeTcpFrame(packet);
      transport.bytesSent += frame.length;
      socket.write(frame);
    },
    close() {
      if (closed) return;
      closed = true;
      // A FIN after the goodbye, not a destroy: closing with unread bytes in our buffer sends a reset, and a reset
      // makes the terminal's stack discard what it has not read yet — the EXIT just sent. What still arrives is
      // read and dropped until the terminal closes, or the timer cuts one that never does.
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS).unref();
    },
  };
  const end = (error: BioError) => {
    if (closed) return;
    closed = true;
    socket.destroy();
    handlers.onClose(error);
  };
  socket.on("data", (chunk: Buffer) => {
    // Whatever a terminal still streams after our goodbye is not read.
    if (closed) return;
    transport.bytesReceived += chunk.length;
    for (const packet of reader.push(chunk)) handlers.onPacket(packet);
  });
  socket.on("error", (error: NodeJS.ErrnoException) => end(linkError(error, options, "tcp")));
  socket.on("close", () =>
    end(
      new BioError("DEVICE_UNREACHABLE", `Terminal ${options.label} closed the connection.`, {
        hint: "The terminal may have restarted, or it serves one connection at a time and another program took it.",
      }),
    ),
  );
  return transport;
}

export async function openUdpTransport(
  options: OpenTransportOptions,
  handlers: TransportHandlers,
): Promise<ZkTransport> {
  // Chunks in flight arrive as bursts of datagrams; Windows' default 64 KB receive buffer would drop some.
  const socket: UdpSocket = createSocket({ type: "udp4", recvBufferSize: 1 << 20 });
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      socket.close();
      reject(options.signal.reason);
    };
    options.signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", (error) => {
      options.signal.removeEventListener("abort", onAbort);
      socket.close();
      reject(linkError(error, options, "udp"));
    });
    socket.connect(options.port, options.host, () => {
      options.signal.removeEventListener("abort", onAbort);
      socket.removeAllListeners("error");
      resolve();
    });
  });
  let closed = false;
  let released = false;
  // Datagrams handed to the socket whose send has not completed: the goodbye is usually the last of them.
  let inFlight = 0;
  const release = () => {
    if (released) return;
    released = true;
    socket.close();
  };
  const transport = {
    kind: "udp" as const,
    bytesReceived: 0,
    bytesSent: 0,
    // A datagram never waits for the peer to read it: nothing a terminal does makes this queue grow.
    pendingBytes: 0,
    send(packet: Buffer) {
      if (closed) return;
      transport.bytesSent += packet.length;
      inFlight++;
      // A connected UDP socket reports an ICMP "port unreachable" through the send callback.
      socket.send(packet, (error) => {
        inFlight--;
        if (error) fail(error);
        else if (closed && inFlight === 0) release();
      });
    },
    close() {
      if (closed) return;
      closed = true;
      // Closing with a send still queued would drop it, and with it the CMD_EXIT that frees the terminal.
      if (inFlight === 0) release();
      else setTimeout(release, CLOSE_FLUSH_MS).unref();
    },
  };
  socket.on("message", (packet: Buffer) => {
    if (closed) return;
    transport.bytesReceived += packet.length;
    handlers.onPacket(packet);
  });
  function fail(error: NodeJS.ErrnoException) {
    if (closed) {
      release();
      return;
    }
    closed = true;
    release();
    handlers.onClose(linkError(error, options, "udp"));
  }
  socket.on("error", fail);
  return transport;
}
