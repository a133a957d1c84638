import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { loadPrivateKey } from "../receiver.mjs";
import { SECRET, request, seal, x25519File, xwingFile } from "./sealing.mjs";

const SERVER = new URL("../server.mjs", import.meta.url).pathname;
// The pattern SecureGather's Python tests find the server's address by.
const ADDRESS = /(http:\/\/\S+\/resolve)/;
// Every line the server may log here; anything else (a body, a digit) fails the test.
const LOG_LINE = new RegExp(
  "^\\S+ backend (" +
    "example backend on http://127\\.0\\.0\\.1:\\d+/resolve, keys b1, h1" +
    '|127\\.0\\.0\\.1 "(GET|POST) /\\w*" \\d{3}' +
    "|refused: [a-z ]+" +
    "|stopping on SIGTERM" +
    ")$",
);

/** Starts server.mjs on a free port, with one key file named by its file and one by KID=FILE. */
function start(env) {
  const dir = mkdtempSync(join(tmpdir(), "backend-node-"));
  const files = { b1: join(dir, "backend-b1.pem"), h1: join(dir, "hybrid.pem") };
  writeFileSync(files.b1, x25519File());
  writeFileSync(files.h1, xwingFile());
  const args = ["--port", "0", "--private-key", files.b1, "--private-key", `h1=${files.h1}`];
  const child = spawn(process.execPath, [SERVER, ...args], { env: { ...process.env, ...env } });
  const server = { child, files, log: "" };
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text) => (server.log += text));
  return server;
}

/** The URL the server logs once it listens (or null if it exits first). */
async function address(server) {
  while (!ADDRESS.test(server.log)) {
    if (server.child.exitCode !== null) return null;
    const [event] = await Promise.race([
      once(server.child.stderr, "data").then(() => ["data"]),
      once(server.child, "exit").then(() => ["exit"]),
    ]);
    if (event === "exit") return null;
  }
  return ADDRESS.exec(server.log)[1];
}

test("the server answers the demo account, refuses the rest, logs no body", async () => {
  const server = start({ SECUREGATHER_BACKEND_SECRET: SECRET });
  const url = await address(server);
  assert.ok(url, server.log);
  const keys = {
    b1: await loadPrivateKey(readFileSync(server.files.b1)),
    h1: await loadPrivateKey(readFileSync(server.files.h1)),
  };
  const timestamp = String(Math.floor(Date.now() / 1000));
  const post = async (fields) => {
    const { headers, body } = request(fields, { timestamp });
    const response = await fetch(url, { method: "POST", headers, body });
    return [response.status, await response.json()];
  };
  const demo = {
    card: await seal(keys.b1, "b1", "1234", "card"),
    pin: await seal(keys.h1, "h1", "4321", "pin"),
  };
  const account = { status: "found", account: "AC12345678", balance: "12.55" };
  assert.deepEqual(await post(demo), [200, { ...account, account_ref: "acct_5f0c9e2a41d7" }]);
  assert.deepEqual((await post(demo))[1].replayed, true);

  const other = "CAfedcba9876543210fedcba9876543210";
  const wrongPin = {
    call_sid: other,
    card: await seal(keys.b1, "b1", "1234", "card", other),
    pin: await seal(keys.b1, "b1", "4320", "pin", other),
  };
  const reference = { status: "not_found", account_ref: "acct_5f0c9e2a41d7" };
  assert.deepEqual(await post(wrongPin), [200, reference]);
  const third = "CA00000000000000000000000000000000";
  const unknownCard = {
    call_sid: third,
    card: await seal(keys.h1, "h1", "5678", "card", third),
    pin: await seal(keys.h1, "h1", "4321", "pin", third),
  };
  assert.deepEqual(await post(unknownCard), [200, { status: "not_found" }]);

  const forged = await fetch(url, { method: "POST", body: "{}" });
  assert.deepEqual([forged.status, await forged.json()], [401, { error: "bad signature" }]);
  const elsewhere = await fetch(url.replace("/resolve", "/other"), { method: "POST", body: "{}" });
  assert.deepEqual([elsewhere.status, await elsewhere.json()], [404, { error: "bad request" }]);
  const get = await fetch(url);
  assert.deepEqual([get.status, await get.json()], [405, { error: "bad request" }]);
  const large = await fetch(url, { method: "POST", body: "x".repeat(16 * 1024 + 1) });
  assert.deepEqual([large.status, await large.json()], [400, { error: "bad request" }]);

  server.child.kill("SIGTERM");
  const [code] = await once(server.child, "exit");
  assert.equal(code, 0);
  const lines = server.log.trimEnd().split("\n");
  for (const line of lines) assert.match(line, LOG_LINE);
  assert.ok(lines.some((line) => line.endsWith("refused: bad signature")));
  assert.equal(lines.filter((line) => line.includes('"POST /resolve" 200')).length, 4);
});

test("a secret shorter than 32 characters stops the server before it listens", async () => {
  const server = start({ SECUREGATHER_BACKEND_SECRET: "x".repeat(31) });
  const [code] = await once(server.child, "exit");
  assert.equal(code, 1);
  assert.equal(server.log, "SECUREGATHER_BACKEND_SECRET must hold at least 32 characters.\n");
});
