/**
 * What the tests play SecureGather with: key files as backend_keypair writes them, tokens sealed
 * with @hpke as cryptography's Suite.encrypt seals them (enc, then ciphertext and tag), and
 * signed requests. (node --test loads this file as a test file too; it holds no test.)
 */

import { generateKeyPairSync, randomBytes } from "node:crypto";

import { Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { XWing } from "@hpke/hybridkem-x-wing";

import { idempotencyKey, loadPrivateKey, sign } from "../receiver.mjs";

export const SECRET = "a-signing-secret-of-forty-characters-123";
export const NOW = 1_796_646_000;
export const CALL = "CA0123456789abcdef0123456789abcdef";

const SUITES = {
  x25519: new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  }),
  mlkem768x25519: new CipherSuite({
    kem: new XWing(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  }),
};

/** A PKCS#8 PEM X25519 private key, as backend_keypair writes one. */
export function x25519File() {
  return generateKeyPairSync("x25519").privateKey.export({ format: "pem", type: "pkcs8" });
}

/** An X-Wing seed in its armor, as backend_keypair writes one for the hybrid suite. */
export function xwingFile(seed = randomBytes(32)) {
  return (
    "-----BEGIN MLKEM768_X25519 SEED-----\n" +
    `${Buffer.from(seed).toString("base64")}\n` +
    "-----END MLKEM768_X25519 SEED-----\n"
  );
}

/** The receiver's keys: b1 of suite x25519, h1 of suite mlkem768x25519. */
export async function keys() {
  return new Map([
    ["b1", await loadPrivateKey(x25519File())],
    ["h1", await loadPrivateKey(xwingFile())],
  ]);
}

/**
 * A token sealing `value` for `purpose` and `callSid` to the loaded key `key` named `kid`.
 * @param {string} suite the suite the token names; the key's own unless a test says otherwise
 */
export async function seal(key, kid, value, purpose, callSid = CALL, suite = key.suite) {
  const hpke = SUITES[key.suite];
  const recipientPublicKey = await hpke.kem.deserializePublicKey(key.publicKey);
  const info = new TextEncoder().encode(`securegather/${purpose}:${callSid}`);
  const { enc, ct } = await hpke.seal(
    { recipientPublicKey, info },
    new TextEncoder().encode(value),
  );
  const sealed = Buffer.concat([Buffer.from(enc), Buffer.from(ct)]);
  return `hpke1.${suite}.${kid}.${sealed.toString("base64url")}`;
}

/**
 * The headers and body SecureGather would send; `fields` replaces or adds body fields, and a
 * field set to undefined is left out.
 */
export function request(fields, { timestamp = String(NOW), secret = SECRET } = {}) {
  const callSid = fields.call_sid ?? CALL;
  const payload = {
    version: 1,
    kid: "b1",
    call_sid: callSid,
    caller: "+15005550006",
    timestamp,
    idempotency_key: idempotencyKey(callSid),
    ...fields,
  };
  const body = JSON.stringify(payload);
  return {
    headers: {
      "X-SecureGather-Timestamp": timestamp,
      "X-SecureGather-Signature": sign(secret, timestamp, body),
    },
    body: Buffer.from(body),
  };
}
