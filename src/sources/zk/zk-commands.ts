/** ZK binary protocol command and reply codes (research/zk-protocol.md §5, §10). */
export const CMD = {
  OPTIONS_RRQ: 11,
  OPTIONS_WRQ: 12,
  ATTLOG_RRQ: 13,
  USERTEMP_RRQ: 9,
  FREE_SIZES: 50,
  GET_TIME: 201,
  SET_TIME: 202,
  REG_EVENT: 500,
  CONNECT: 1000,
  EXIT: 1001,
  ENABLE_DEVICE: 1002,
  DISABLE_DEVICE: 1003,
  AUTH: 1102,
  GET_VERSION: 1100,
  PREPARE_DATA: 1500,
  DATA: 1501,
  FREE_DATA: 1502,
  DATA_WRRQ: 1503,
  DATA_RDY: 1504,
  ACK_OK: 2000,
  ACK_ERROR: 2001,
  ACK_DATA: 2002,
  ACK_RETRY: 2003,
  ACK_REPEAT: 2004,
  ACK_UNAUTH: 2005,
  ACK_UNKNOWN: 65535,
} as const;

/** Event flags carried in the session field of a pushed CMD_REG_EVENT packet. */
export const EVENT_FLAG = { ATTLOG: 1 } as const;

export function commandName(code: number): string {
  for (const [name, value] of Object.entries(CMD)) if (value === code) return name;
  return `#${code}`;
}
