import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { main, nthSerial } from "./cli.ts";
import { RawZkClient } from "./raw-zk-client.ts";

function capture(signal?: AbortSignal) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t), ...(signal ? { signal } : {}) },
  };
}

describe("sim zk CLI", () => {
  it("prints usage for --help", async () => {
    const c = capture();
    assert.equal(await main(["--help"], c.io), 0);
    assert.match(c.out.join(""), /--write-mode/);
  });

  for (const argv of [
    ["--bogus"],
    ["--record-size", "12"],
    ["--port", "x"],
    ["--transport", "sctp"],
    ["--tz", "Mars/Base"],
  ]) {
    it(`rejects ${argv.join(" ")} with exit code 2`, async () => {
      const c = capture();
      assert.equal(await main(argv, c.io), 2);
      assert.match(c.err.join(""), /bioapi sim zk: /);
    });
  }

  it("increments the serial suffix", () => {
    assert.equal(nthSerial("SIM0000001", 2), "SIM0000003");
    assert.equal(nthSerial("ABC", 1), "ABC-2");
  });

  it("runs K terminals until stopped, each answering on its own port", async () => {
    const stop = new AbortController();
    const c = capture(stop.signal);
    const running = main(
      ["--port", "0", "--count", "2", "--records", "7", "--serial", "T0009", "--transport", "tcp"],
      c.io,
    );
    while (c.out.length < 2) await new Promise((r) => setTimeout(r, 5));
    const lines = c.out.map((l) => l.split(" "));
    assert.deepEqual(
      lines.map((l) => [l[0], l[2]]),
      [
        ["T0009", "tcp"],
        ["T0010", "tcp"],
      ],
    );
    const port = Number(lines[1]?.[1]?.split(":")[1]);
    const client = await RawZkClient.tcp(port);
    await client.connect();
    assert.equal((await client.call(50)).data.readInt32LE(32), 7);
    assert.equal(
      (await client.call(11, Buffer.from("~SerialNumber\0"))).data.toString("latin1"),
      "~SerialNumber=T0010\0",
    );
    await client.close();
    stop.abort();
    assert.equal(await running, 0);
  });
});
