/**
 * The backend's side of SecureGather's HTTP resolver, in Node.js: verify, open, hand over,
 * answer. It is the twin of examples/backend/receiver.py and answers exactly as it does.
 *
 * Copy this file into the service that holds your accounts; it needs Node 20 and three npm
 * packages (@hpke/core, @hpke/dhkem-x25519, @hpke/hybridkem-x-wing), nothing of SecureGather.
 * Give it the signing secret SecureGather holds (SECUREGATHER_BACKEND_SECRET), your private
 * key(s) by key id, and a function `check(cardLast4, pin, caller)` that returns (or resolves
 * to) one of `found()`, `notFound()` or `locked()`. Then hand every POST's headers and raw body
 * to `receiver.handle()` and send back the status and JSON it returns.
 *
 * What it enforces, in order:
 * 1. the HMAC-SHA256 signature over `<timestamp>.<body>` (compared in constant time), with the
 *    timestamp within 5 minutes of this host's clock;
 * 2. the idempotency key (derived by SecureGather from the CallSid): a request seen before gets
 *    its first answer again, never a second check; the same key with another body is refused,
 *    and so is a ciphertext seen before under another key;
 * 3. each ciphertext opened with the private key its key id names, bound by HPKE's `info` to
 *    its purpose (card or PIN) and its CallSid: a swapped or moved ciphertext does not open.
 *
 * The digits exist only inside `handle()` and your function: no error, log line or answer here
 * carries them.
 */

import { createHash, createHmac, createPrivateKey, timingSafeEqual } from "node:crypto";
import { basename } from "node:path";

import { Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { XWing } from "@hpke/hybridkem-x-wing";

/**
 * The suites a token may name, each DHKEM or X-Wing with HKDF-SHA256 and AES-256-GCM. A Map, not
 * an object: a token's suite is the sender's text, and "constructor" must not find anything.
 */
const SUITES = new Map([
  ["x25519", suiteFor(new DhkemX25519HkdfSha256())],
  ["mlkem768x25519", suiteFor(new XWing())],
]);
const TAG_BYTES = 16;
/** Seconds either side of this host's clock that a signed timestamp may be. */
export const TOLERANCE = 5 * 60;
/**
 * Answers and ciphertexts are remembered for longer than the tolerance, so a request is stale
 * before it is forgotten, and no more than this many of each, to bound memory whatever the rate.
 */
export const REMEMBERED_SECONDS = 2 * TOLERANCE;
export const REMEMBERED_MAX = 100_000;
const SIGNATURE_HEADER = "x-securegather-signature";
const TIMESTAMP_HEADER = "x-securegather-timestamp";
const TOKEN = /^hpke1\.([a-z0-9]+)\.([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]+)$/;
const FOUR_DIGITS = /^[0-9]{4}$/;
const ASCII_DIGITS = /^[0-9]+$/;
const SEED_BEGIN = "-----BEGIN MLKEM768_X25519 SEED-----";
const SEED_END = "-----END MLKEM768_X25519 SEED-----";
const FIELDS = ["idempotency_key", "call_sid", "caller", "card", "pin"];

function suiteFor(kem) {
  return new CipherSuite({ kem, kdf: new HkdfSha256(), aead: new Aes256Gcm() });
}

/**
 * The answer for digits that match an account. `accountRef` is the opaque, stable reference
 * SecureGather counts failures on; give it here too, so the account is known by one name.
 * @param {string} account
 * @param {string} balance
 * @param {string} [accountRef]
 */
export function found(account, balance, accountRef = "") {
  const answer = { status: "found", account, balance };
  if (accountRef) answer.account_ref = accountRef;
  return answer;
}

/**
 * No account for these digits. `accountRef`: the reference of the account the card matched when
 * only the PIN was wrong (SecureGather counts failures on it); leave it empty when the card
 * matched none.
 * @param {string} [accountRef]
 */
export function notFound(accountRef = "") {
  return accountRef ? { status: "not_found", account_ref: accountRef } : { status: "not_found" };
}

/** Your own lock on the account (if you keep one): SecureGather tells the caller so. */
export function locked() {
  return { status: "locked" };
}

/**
 * The signature header's value, as SecureGather computes it.
 * @param {string | Uint8Array} secret
 * @param {string} timestamp
 * @param {string | Uint8Array} body
 */
export function sign(secret, timestamp, body) {
  const hmac = createHmac("sha256", secret);
  hmac.update(`${timestamp}.`);
  hmac.update(body);
  return `v1=${hmac.digest("hex")}`;
}

/**
 * The key SecureGather derives from the CallSid: one check per call, whatever redelivers.
 * @param {string} callSid
 */
export function idempotencyKey(callSid) {
  return sha256(`securegather.resolve|${callSid}`).toString("hex").slice(0, 32);
}

/**
 * The key id a key file's name gives, as server.py reads it: `backend-b1.pem` is key b1.
 * @param {string} path
 */
export function keyIdFromFileName(path) {
  const name = basename(path).replace(/\.pem$/, "");
  return name.startsWith("backend-") ? name.slice("backend-".length) : name;
}

/**
 * A private key file written by SecureGather's `manage.py backend_keypair`, ready to open
 * tokens: `{suite, privateKey, publicKey}`, the last the raw public key SecureGather seals to.
 * An X25519 key is PKCS#8 PEM; an X-Wing (ML-KEM-768 + X25519) key is its 32-byte seed, from
 * which X-Wing derives both halves. Any other file is refused with a message that quotes
 * nothing of it.
 * @param {string | Uint8Array} text
 */
export async function loadPrivateKey(text) {
  const pem = typeof text === "string" ? text : Buffer.from(text).toString("latin1");
  const armored = pem.trim();
  if (armored.startsWith(SEED_BEGIN) && armored.endsWith(SEED_END)) {
    const base64 = armored.slice(SEED_BEGIN.length, -SEED_END.length).replace(/\s/g, "");
    const bytes = Buffer.from(base64, "base64");
    // Node's decoder skips what is not base64; encoding back shows whether anything was.
    if (bytes.length !== 32 || bytes.toString("base64") !== base64) {
      throw new Error("not a SecureGather backend key: an MLKEM768_X25519 seed is 32 bytes");
    }
    const kem = SUITES.get("mlkem768x25519").kem;
    // A fresh array: XWing reads the seed's whole ArrayBuffer, and a Buffer may be a slice of
    // Node's shared pool.
    const pair = await kem.generateKeyPairDerand(new Uint8Array(bytes));
    const publicKey = new Uint8Array(await kem.serializePublicKey(pair.publicKey));
    return { suite: "mlkem768x25519", privateKey: pair.privateKey, publicKey };
  }
  let jwk;
  try {
    jwk = createPrivateKey({ key: pem, format: "pem" }).export({ format: "jwk" });
  } catch {
    jwk = null;
  }
  if (jwk?.kty !== "OKP" || jwk?.crv !== "X25519") {
    throw new Error(
      "not a SecureGather backend key: expected an X25519 PKCS#8 PEM or an MLKEM768_X25519 seed",
    );
  }
  // Node's JWK export is the form @hpke's KEM imports: {kty: "OKP", crv: "X25519", d, x}.
  const kem = SUITES.get("x25519").kem;
  const privateKey = await kem.importKey("jwk", { kty: "OKP", crv: "X25519", d: jwk.d }, false);
  const publicKey = new Uint8Array(Buffer.from(jwk.x, "base64url"));
  return { suite: "x25519", privateKey, publicKey };
}

/**
 * The public entry SecureGather takes for a loaded key: `KID:X25519:<base64>` or
 * `KID:MLKEM768_X25519:<base64>`.
 * @param {string} kid
 * @param {{suite: string, publicKey: Uint8Array}} key
 */
export function publicEntry(kid, key) {
  const label = key.suite === "x25519" ? "X25519" : "MLKEM768_X25519";
  return `${kid}:${label}:${Buffer.from(key.publicKey).toString("base64")}`;
}

/** A request that must not be answered: its HTTP status and a reason naming no value. */
export class Refused extends Error {
  /**
   * @param {number} status
   * @param {string} reason
   */
  constructor(status, reason) {
    super(reason);
    this.name = "Refused";
    this.status = status;
    this.reason = reason;
  }
}

/**
 * Receives SecureGather's requests. One instance serves a whole process: it remembers answers
 * and ciphertexts, which is what stops a replay.
 */
export class Receiver {
  /** Idempotency key → {when, digest, answer}; a Map iterates oldest first. */
  #answers = new Map();
  /** Ciphertext fingerprint (hex) → {when, key}. */
  #tokens = new Map();
  /** Idempotency key → {digest, answer: Promise}, for the request still being worked on. */
  #inFlight = new Map();
  #keys;

  /**
   * @param {object} options
   * @param {string | Uint8Array} options.secret SecureGather's SECUREGATHER_BACKEND_SECRET.
   * @param {Map<string, object> | Record<string, object>} options.privateKeys key id →
   *   loadPrivateKey()'s result.
   * @param {(card: string, pin: string, caller: string) => object | Promise<object>} options.check
   * @param {() => number} [options.now] the time in seconds, for tests.
   */
  constructor({ secret, privateKeys, check, now = () => Date.now() / 1000 }) {
    // SecureGather refuses a shorter secret (accounts.E012); a missing one here would only show
    // as every request failing.
    if (!(secret?.length >= 32)) {
      throw new Error("the signing secret must hold at least 32 characters");
    }
    this.secret = secret;
    this.check = check;
    this.now = now;
    this.#keys = new Map(privateKeys instanceof Map ? privateKeys : Object.entries(privateKeys));
    for (const [kid, key] of this.#keys) {
      // A PEM's text, or a loadPrivateKey() promise not awaited, would otherwise be refused
      // request by request as a key of the wrong suite.
      if (!SUITES.has(key?.suite)) throw new Error(`key ${kid} is not loadPrivateKey()'s result`);
    }
  }

  /**
   * The HTTP status and JSON answer for one request to the resolve endpoint. `headers` is a
   * plain object (as node:http gives it), a Map or a Headers; `rawBody` the bytes as they came,
   * since the signature is over them. An error thrown by `check` is thrown again here.
   * @param {Record<string, string | string[] | undefined> | Map<string, string> | Headers} headers
   * @param {Uint8Array | string} rawBody
   * @returns {Promise<{status: number, answer: object}>}
   */
  async handle(headers, rawBody) {
    try {
      return { status: 200, answer: await this.#answer(headers, Buffer.from(rawBody)) };
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      return { status: error.status, answer: { error: error.reason } };
    }
  }

  async #answer(headers, body) {
    const lowered = lowerCase(headers);
    const timestamp = lowered.get(TIMESTAMP_HEADER) ?? "";
    const signature = lowered.get(SIGNATURE_HEADER) ?? "";
    if (!sameBytes(sign(this.secret, timestamp, body), signature)) {
      throw new Refused(401, "bad signature");
    }
    if (!ASCII_DIGITS.test(timestamp) || Math.abs(this.now() - Number(timestamp)) > TOLERANCE) {
      throw new Refused(401, "stale or future timestamp");
    }
    const request = parse(body);
    if (String(request.timestamp) !== timestamp) {
      throw new Refused(400, "timestamp differs from the signed header");
    }
    const key = request.idempotency_key;
    if (!sameBytes(key, idempotencyKey(request.call_sid))) {
      throw new Refused(400, "idempotency key is not the call's");
    }
    const digest = sha256(body);
    this.#forget(this.now());
    const remembered = this.#answers.get(key) ?? this.#inFlight.get(key);
    if (remembered) {
      if (!sameBytes(remembered.digest, digest)) {
        throw new Refused(409, "idempotency key reused for another request");
      }
      // A delivery that arrives while the first is still at work waits for its outcome: the
      // same answer, or the same refusal. Either way the check runs once.
      return { ...(await remembered.answer), replayed: true };
    }
    const fingerprints = [request.card, request.pin].map(fingerprint);
    if (fingerprints.some((print) => this.#tokens.has(print))) {
      throw new Refused(409, "ciphertext already used");
    }
    // Recorded before anything is awaited: another request carrying these ciphertexts, however
    // soon it comes, is refused above.
    for (const print of fingerprints) this.#tokens.set(print, { when: this.now(), key });
    const work = this.#resolve(request, fingerprints, key);
    this.#inFlight.set(key, { digest, answer: work });
    try {
      const answer = await work;
      this.#answers.set(key, { when: this.now(), digest, answer });
      return { ...answer };
    } finally {
      this.#inFlight.delete(key);
    }
  }

  async #resolve(request, fingerprints, key) {
    try {
      const card = await this.#open(request.card, "card", request.call_sid);
      const pin = await this.#open(request.pin, "pin", request.call_sid);
      if (!FOUR_DIGITS.test(card) || !FOUR_DIGITS.test(pin)) {
        throw new Refused(400, "sealed values are not 4 digits");
      }
      return { ...(await this.check(card, pin, request.caller)) };
    } catch (error) {
      // No answer came of the ciphertexts (a refusal, or a check that threw because your
      // system was down), so they were not used: a redelivery is refused again or checked
      // again, as receiver.py does, rather than refused as "already used".
      for (const print of fingerprints) {
        if (this.#tokens.get(print)?.key === key) this.#tokens.delete(print);
      }
      throw error;
    }
  }

  async #open(token, purpose, callSid) {
    // (fingerprint() below reads tokens the same way, to remember the ciphertext itself.)
    const match = TOKEN.exec(token);
    if (match === null || !SUITES.has(match[1])) {
      throw new Refused(400, `${purpose}: not a token of a known suite`);
    }
    const [, suiteName, kid, text] = match;
    const key = this.#keys.get(kid);
    if (key === undefined) {
      throw new Refused(400, `${purpose}: unknown key id ${kid}`);
    }
    if (key.suite !== suiteName) {
      throw new Refused(400, `${purpose}: key ${kid} is not a ${suiteName} key`);
    }
    const sealed = base64url(text);
    if (sealed === null) {
      throw new Refused(400, `${purpose}: not base64url`);
    }
    // The encapsulated key (enc: 32 bytes for X25519, 1120 for X-Wing) comes first, then the
    // ciphertext and its tag, as cryptography's single-shot Suite.encrypt writes them.
    const suite = SUITES.get(suiteName);
    const encSize = suite.kem.encSize;
    if (sealed.length <= encSize + TAG_BYTES) {
      throw new Refused(400, `${purpose}: too short`);
    }
    try {
      const params = {
        recipientKey: key.privateKey,
        enc: sealed.subarray(0, encSize),
        info: info(purpose, callSid),
      };
      const plain = await suite.open(params, sealed.subarray(encSize));
      return new TextDecoder("utf-8", { fatal: true }).decode(plain);
    } catch {
      // Whatever @hpke threw (a bad tag, an enc that is no point) says the same: not this
      // key, purpose or call. Its message is not passed on.
      throw new Refused(400, `${purpose}: does not open for this purpose and call`);
    }
  }

  /** Drops what is older than REMEMBERED_SECONDS, or beyond REMEMBERED_MAX, oldest first. */
  #forget(now) {
    const oldest = now - REMEMBERED_SECONDS;
    for (const memory of [this.#answers, this.#tokens]) {
      for (const [name, { when }] of memory) {
        if (memory.size <= REMEMBERED_MAX && when >= oldest) break;
        memory.delete(name);
      }
    }
  }
}

/**
 * What identifies a sealed value: a digest of its bytes, not of its spelling, which base64's
 * unused trailing bits let a sender vary without changing a byte.
 * @param {string} token
 */
function fingerprint(token) {
  const match = TOKEN.exec(token);
  const sealed = (match && base64url(match[3])) ?? Buffer.from(token);
  return sha256(sealed).toString("hex");
}

/**
 * The bytes of unpadded base64url, or null. Node's decoder takes any length, but one character
 * past a multiple of four holds no whole byte, and Python's decoder refuses it: so does this.
 * @param {string} text of [A-Za-z0-9_-] only, as TOKEN matched it
 */
function base64url(text) {
  return text.length % 4 === 1 ? null : Buffer.from(text, "base64url");
}

function info(purpose, callSid) {
  return new TextEncoder().encode(`securegather/${purpose}:${callSid}`);
}

function sha256(data) {
  return createHash("sha256").update(data).digest();
}

/** Equal in constant time (for a given length, which is no secret here). */
function sameBytes(a, b) {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The request's JSON, with each field SecureGather always sends present and a string. */
function parse(body) {
  let request;
  try {
    request = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new Refused(400, "malformed request");
  }
  if (request === null || typeof request !== "object" || Array.isArray(request)) {
    throw new Refused(400, "malformed request");
  }
  if (!FIELDS.every((name) => typeof request[name] === "string")) {
    throw new Refused(400, "malformed request");
  }
  return request;
}

/** Header names in lower case, whichever of node:http's object, a Map or a Headers holds them. */
function lowerCase(headers) {
  const entries =
    typeof headers.entries === "function" ? headers.entries() : Object.entries(headers);
  const lowered = new Map();
  for (const [name, value] of entries) {
    lowered.set(name.toLowerCase(), Array.isArray(value) ? value.join(", ") : String(value ?? ""));
  }
  return lowered;
}
