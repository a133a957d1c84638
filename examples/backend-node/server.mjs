/**
 * An example backend for SecureGather's HTTP resolver, in Node.js, with the demo account in it.
 *
 *     SECUREGATHER_BACKEND_SECRET=... node examples/backend-node/server.mjs --port 8800 \
 *         --private-key backend-b1.pem [--private-key b0=old-key.pem]
 *
 * It answers POST /resolve through receiver.mjs's Receiver, and checks the digits against one
 * demo account: card 1234, PIN 4321 → AC12345678, balance 12.55. Replace `check` with a lookup
 * in your own system. Each private key file is one `manage.py backend_keypair` wrote; its key id
 * is the file's name up to `.pem` after "backend-", or given as `--private-key KID=FILE`.
 */

import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { timingSafeEqual } from "node:crypto";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import { Receiver, found, keyIdFromFileName, loadPrivateKey, notFound } from "./receiver.mjs";

/**
 * The demo account: card last 4 → [PIN, account, balance, opaque reference]. The reference is
 * what SecureGather counts a wrong PIN on: stable, and saying nothing of the card or account.
 */
const DEMO = new Map([["1234", ["4321", "AC12345678", "12.55", "acct_5f0c9e2a41d7"]]]);
/** A request body larger than this is no request of SecureGather's. */
export const MAX_BODY = 16 * 1024;

/**
 * The company's function: look the account up where it lives.
 * @param {string} cardLast4
 * @param {string} pin
 * @param {string} caller
 */
export function check(cardLast4, pin, caller) {
  const entry = DEMO.get(cardLast4);
  if (entry === undefined) {
    // Compared anyway, so an unknown card costs what a wrong PIN does.
    samePin(pin, "0000");
    return notFound();
  }
  const [expectedPin, account, balance, reference] = entry;
  if (!samePin(pin, expectedPin)) return notFound(reference);
  return found(account, balance, reference);
}

function samePin(pin, expected) {
  const left = Buffer.from(pin);
  const right = Buffer.from(expected);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** One dated line on stderr, as server.py logs; never a body or a digit. */
function log(message) {
  process.stderr.write(`${new Date().toISOString()} backend ${message}\n`);
}

/**
 * The request handler: POST /resolve to the receiver, anything else refused.
 * @param {Receiver} receiver
 */
export function handlerFor(receiver) {
  return async (request, response) => {
    const peer = request.socket.remoteAddress;
    const send = (status, answer) => {
      const body = JSON.stringify(answer);
      response.writeHead(status, {
        "Content-Type": "application/json",
        "Content-Length": Buffer.byteLength(body),
      });
      response.end(body);
      // The request line only (method, path, status): never a body.
      log(`${peer} "${request.method} ${request.url}" ${status}`);
    };
    if (request.url !== "/resolve") return send(404, { error: "bad request" });
    if (request.method !== "POST") return send(405, { error: "bad request" });
    let body;
    try {
      body = await readBody(request);
    } catch {
      // The client went away mid-body: there is no one to answer.
      return log(`${peer} "${request.method} ${request.url}" aborted`);
    }
    if (body === null) return send(400, { error: "bad request" });
    let result;
    try {
      result = await receiver.handle(request.headers, body);
    } catch (error) {
      // The check threw. Its message may hold what it was given, so only its kind is logged.
      log(`check failed: ${error?.name ?? "error"}`);
      return send(500, { error: "internal error" });
    }
    if (result.status !== 200) log(`refused: ${result.answer.error}`);
    send(result.status, result.answer);
  };
}

/**
 * The body's bytes, or null when it is empty or larger than MAX_BODY. An oversized body is read
 * to its end and dropped, not kept: a connection closed while the client still sends would
 * reach it as a reset instead of the answer.
 */
function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    request.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    request.on("end", () => resolve(size > 0 && size <= MAX_BODY ? Buffer.concat(chunks) : null));
    request.on("error", reject);
  });
}

/** `KID=FILE`, or a file whose name gives its key id. */
function keyOption(option) {
  const equals = option.indexOf("=");
  return equals > 0
    ? [option.slice(0, equals), option.slice(equals + 1)]
    : [keyIdFromFileName(option), option];
}

async function main() {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8800" },
      "private-key": { type: "string", multiple: true },
    },
  });
  const port = Number(values.port);
  if (!/^[0-9]+$/.test(values.port) || port > 65535) {
    throw new Error("--port takes a number from 0 to 65535");
  }
  if (!values["private-key"]) throw new Error("--private-key FILE or KID=FILE is required");
  const secret = process.env.SECUREGATHER_BACKEND_SECRET ?? "";
  if (secret.length < 32) {
    throw new Error("SECUREGATHER_BACKEND_SECRET must hold at least 32 characters.");
  }
  const keys = new Map();
  for (const option of values["private-key"]) {
    const [kid, path] = keyOption(option);
    if (keys.has(kid)) throw new Error(`key id ${kid} is given twice`);
    let text;
    try {
      text = readFileSync(path);
    } catch (error) {
      throw new Error(`cannot read ${path}: ${error.code}`);
    }
    try {
      keys.set(kid, await loadPrivateKey(text));
    } catch (error) {
      throw new Error(`${path}: ${error.message}`);
    }
  }
  const receiver = new Receiver({ secret, privateKeys: keys, check });
  const server = createServer(handlerFor(receiver));
  server.on("error", (error) => {
    process.stderr.write(`cannot listen on ${values.host}:${values.port}: ${error.code}\n`);
    process.exit(1);
  });
  server.listen(port, values.host, () => {
    const kids = [...keys.keys()].sort().join(", ");
    const host = values.host.includes(":") ? `[${values.host}]` : values.host;
    const url = `http://${host}:${server.address().port}/resolve`;
    log(`example backend on ${url}, keys ${kids}`);
  });
  const stop = (signal) => {
    log(`stopping on ${signal}`);
    // close() lets a request in flight finish, and closes idle keep-alive connections.
    server.close(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

// Run as a program, not when a test imports check() or handlerFor().
if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
}
