/**
 * The house of src/: each folder stands on a floor, and a file may import only its own folder and the folders on
 * the floors below. Two folders on one floor never import each other, so a floor can be read, tested and replaced
 * without the ones beside it. docs/architecture.md shows this table and the picture drawn from it
 * (`npm run layers -- --write-docs`); a test keeps the copy true.
 */
export const FLOORS = [
  { floor: 0, folders: ["core"], holds: "types and helpers every floor uses: errors, clock, punch, logger, tasks" },
  { floor: 1, folders: ["platform"], holds: "the operating system: processes, native modules, Win32 bindings" },
  {
    floor: 2,
    folders: ["store", "secrets", "link", "service"],
    holds: "the local store, the secret store, the cloud link, service hosting and install plans",
  },
  { floor: 3, folders: ["config"], holds: "the cloud-managed config: schema, envelope, channel, cache" },
  { floor: 4, folders: ["sources", "sinks"], holds: "ways in and ways out, one folder per kind" },
  { floor: 5, folders: ["supervisor", "shipper"], holds: "one worker per source; the outbox drained to the sinks" },
  { floor: 6, folders: ["status"], holds: "status snapshot, page, metrics, health channel, heartbeat body" },
  { floor: 7, folders: ["monitor"], holds: "the companion watchdog" },
  { floor: 8, folders: ["app"], holds: "the composition root: wiring only" },
  { floor: 9, folders: ["cli"], holds: "one file per command" },
] as const;

/**
 * Folders whose subfolders are kinds side by side (a terminal protocol, a database family, a sink, an OS): a kind
 * may use its parent folder's shared files, never a sibling kind, so adding a kind touches only its own folder.
 */
export const KIND_FOLDERS = ["sources", "sinks", "service", "platform"] as const;

/** Trees that must share no code with src/ in either direction: the reference cloud and the device simulators. */
export const INDEPENDENT_TREES = ["cloud", "sim"] as const;
