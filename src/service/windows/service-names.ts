/** The two Windows services, by the names the SCM, the installer, the monitor and the health pipe's access list use. */
export const CONNECTOR_SERVICE = "CamsBioApi";
export const MONITOR_SERVICE = "CamsBioApiMonitor";
