/** Command and reply codes of the ZK standalone protocol (reference sections 5 and 10). */
export const ZK_CMD = {
  CONNECT: 1000,
  EXIT: 1001,
  ENABLEDEVICE: 1002,
  DISABLEDEVICE: 1003,
  REFRESHDATA: 1013,
  REFRESHOPTION: 1014,
  GET_VERSION: 1100,
  AUTH: 1102,
  OPTIONS_RRQ: 11,
  OPTIONS_WRQ: 12,
  ATTLOG_RRQ: 13,
  CLEAR_DATA: 14,
  CLEAR_ATTLOG: 15,
  USERTEMP_RRQ: 9,
  DB_RRQ: 7,
  GET_FREE_SIZES: 50,
  STARTVERIFY: 60,
  CANCELCAPTURE: 62,
  STATE_RRQ: 64,
  GET_PINWIDTH: 69,
  GET_TIME: 201,
  SET_TIME: 202,
  REG_EVENT: 500,
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

/** Real-time event flags (section 11); only EF_ATTLOG is produced by the simulator. */
export const EF_ATTLOG = 1;

/** Largest chunk a client may ask for over TCP; also the legacy ATTLOG_RRQ packet size. */
export const TCP_MAX_CHUNK = 65_472;

/** pyzk reads datagrams with a 1,032-byte buffer, so bulk datagrams carry at most this much data. */
export const UDP_MAX_DATA = 1024;
