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
    const usage = c.out.join("");
    for (const flag of [
      "--write-mode",
      "--record-layout",
      "--connect-reply-byte",
      "--tcp-data-packet-size",
      "--session-counter",
      "--prepare-second-word",
      "--hostile-announce",
      "--hostile-prepare",
      "--hostile-users",
      "--trickle BYTES:MS",
    ]) {
      assert.ok(usage.includes(flag), flag);
    }
  });

  for (const argv of [
    ["--bogus"],
    ["--record-size", "12"],
    ["--port", "x"],
    ["--transport", "sctp"],
    ["--tz", "Mars/Base"],
    ["--record-layout", "zem600", "--record-size", "8"],
    ["--record-layout", "zem500"],
    ["--connect-reply-byte", "256"],
    ["--tcp-data-packet-size", "0"],
    ["--prepare-second-word", "4294967296"],
    ["--hostile-announce", "2"],
    ["--hostile-prepare", "-1"],
    ["--hostile-users", "1.5"],
    ["--trickle", "5"],
    ["--trickle", "0:10"],
    ["--trickle", "10:x"],
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

  /** Runs one terminal with `argv`, hands its port to `use`, then stops it. */
  async function running(argv: string[], use: (port: number) => Promise<void>): Promise<void> {
    const stop = new AbortController();
    const c = capture(stop.signal);
    const done = main(["--port", "0", "--transport", "tcp", ...argv], c.io);
    while (c.out.length < 1 && c.err.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(c.err, []);
    try {
      await use(Number(c.out[0]?.split(" ")[1]?.split(":")[1]));
    } finally {
      stop.abort();
      assert.equal(await done, 0);
    }
  }

  const chunk = (offset: number, length: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(offset, 0);
    b.writeUInt32LE(length, 4);
    return b;
  };

  it("passes the real-firmware and hostile-size flags to the terminal", async () => {
    const argv = [
      ...["--records", "300", "--record-size", "8", "--record-layout", "zem500"],
      ...["--connect-reply-byte", "1", "--tcp-data-packet-size", "1008", "--session-counter"],
      ...["--prepare-second-word", "65528", "--hostile-announce", "100000", "--hostile-users", "5000"],
    ];
    await running(argv, async (port) => {
      const client = await RawZkClient.tcp(port);
      try {
        assert.deepEqual([...(await client.connect()).data], [1]);
        const info = await client.call(1503, Buffer.from("010d000000000000000000", "hex"));
        assert.equal(info.data.readUInt32LE(1), 100_000);
        client.send(1504, chunk(0, 2404));
        const { packets, data } = await client.collectBulk();
        assert.equal(packets[0]?.data.readUInt32LE(4), 65_528);
        assert.deepEqual(
          packets.filter((p) => p.command === 1501).map((p) => [p.session, p.data.length]),
          [
            [1, 1008],
            [2, 1008],
            [3, 388],
          ],
        );
        // ZEM500 order: a zero byte at 3 and the time at 4, which then falls in this year.
        const year = String(new Date().getUTCFullYear());
        for (let at = 4; at < data.length; at += 8) {
          assert.equal(data[at + 3], 0);
          const days = Math.floor(data.readUInt32LE(at + 4) / 86_400);
          assert.equal(String(2000 + Math.floor(days / (12 * 31))), year);
        }
        const users = await client.call(1503, Buffer.from("0109000500000000000000", "hex"));
        assert.equal(users.data.readUInt32LE(1), 4 + 5000 * 72);
      } finally {
        await client.close();
      }
    });
  });

  it("passes --trickle and --hostile-prepare: a 4 GiB chunk claim that drips", async () => {
    await running(["--records", "50", "--trickle", "100:1", "--hostile-prepare", "4294967295"], async (port) => {
      const client = await RawZkClient.tcp(port);
      try {
        await client.connect();
        await client.call(1503, Buffer.from("010d000000000000000000", "hex"));
        client.send(1504, chunk(0, 2004));
        const prepare = await client.next();
        assert.deepEqual([prepare.command, prepare.data.readUInt32LE(0)], [1500, 0xffff_ffff]);
        for (let i = 0; i < 3; i++) {
          const p = await client.next();
          assert.deepEqual([p.command, p.data.length], [1501, 100]);
        }
      } finally {
        await client.close();
      }
    });
  });
});
