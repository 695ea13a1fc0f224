/** The slice of node-zklib 1.3.0 (CommonJS, untyped) that the interop test uses. */
declare module "node-zklib" {
  interface ZkLibUser {
    uid: number;
    role: number;
    password?: string;
    name: string;
    cardno?: number;
    userId: string | number;
  }
  interface ZkLibRecord {
    userSn?: number;
    deviceUserId: string | number;
    recordTime: Date;
    ip: string;
  }
  class ZKLib {
    constructor(ip: string, port: number, timeoutMs: number, inport: number);
    connectionType: "tcp" | "udp" | null;
    createSocket(): Promise<void>;
    getInfo(): Promise<{ userCounts: number; logCounts: number; logCapacity: number }>;
    getUsers(): Promise<{ data: ZkLibUser[]; err: unknown }>;
    getAttendances(): Promise<{ data: ZkLibRecord[]; err: unknown }>;
    disconnect(): Promise<unknown>;
    /** Sends one command; resolves with the reply's ZK header and data (TCP prefix removed). */
    executeCmd(command: number, data?: string | Buffer): Promise<Buffer>;
  }
  export default ZKLib;
}
