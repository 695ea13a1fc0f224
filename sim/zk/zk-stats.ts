/** Counters a test reads to see what a client really did on the wire. */
export interface ZkSimStats {
  /** TCP sockets accepted plus UDP peers seen for the first time. */
  connectionsAccepted: number;
  currentConnections: number;
  /** Packets received per command code (event acks included under 2000). */
  commands: Record<number, number>;
  /** Packets from the client other than event acknowledgements: one per round trip. */
  requests: number;
  /** CMD_EXIT packets, counted on receipt (before stalls, silence or the virtual wire). */
  exits: number;
  /** CMD_REG_EVENT packets with mask 0 (unregistering), counted on receipt. */
  eventUnregisters: number;
  /** Packets received while the "silent" fault was on and never answered. */
  silenced: number;
  /** 1503 requests that produced a set. */
  bulkPrepares: number;
  /** 1504 chunk requests answered, plus legacy ATTLOG_RRQ reads. */
  bulkChunks: number;
  /** ZK bytes, counting the 8-byte TCP prefix and any injected garbage. */
  bytesSent: number;
  bytesReceived: number;
  /** bytesSent plus a rough Ethernet/IP/TCP (or UDP) header estimate. */
  estimatedEthernetBytesSent: number;
  packetsSent: number;
  packetsReceived: number;
  checksumMismatches: number;
  /** Bytes the TCP reader threw away while looking for the magic. */
  garbageBytesSkipped: number;
  eventsPushed: number;
  eventAcks: number;
  setTime: number;
  clearAttlog: number;
  clearData: number;
  disableDevice: number;
  authFailures: number;
  busyRejections: number;
}

export function emptyStats(): ZkSimStats {
  return {
    connectionsAccepted: 0,
    currentConnections: 0,
    commands: {},
    requests: 0,
    exits: 0,
    eventUnregisters: 0,
    silenced: 0,
    bulkPrepares: 0,
    bulkChunks: 0,
    bytesSent: 0,
    bytesReceived: 0,
    estimatedEthernetBytesSent: 0,
    packetsSent: 0,
    packetsReceived: 0,
    checksumMismatches: 0,
    garbageBytesSkipped: 0,
    eventsPushed: 0,
    eventAcks: 0,
    setTime: 0,
    clearAttlog: 0,
    clearData: 0,
    disableDevice: 0,
    authFailures: 0,
    busyRejections: 0,
  };
}
