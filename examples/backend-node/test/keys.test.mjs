import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";

import { XWing } from "@hpke/hybridkem-x-wing";

import { keyIdFromFileName, loadPrivateKey, publicEntry } from "../receiver.mjs";
import { xwingFile } from "./sealing.mjs";

// The X-Wing draft's vectors, kept beside SecureGather's own hybrid-suite tests.
const VECTORS = JSON.parse(
  readFileSync(new URL("../../../keys/tests/xwing_vectors.json", import.meta.url), "utf8"),
).vectors;

test("an X-Wing seed gives the draft's public key, and decapsulates its ciphertext", async () => {
  assert.equal(VECTORS.length, 3);
  const kem = new XWing();
  for (const { seed, pk, ct, ss } of VECTORS) {
    const key = await loadPrivateKey(xwingFile(Buffer.from(seed, "hex")));
    assert.equal(key.suite, "mlkem768x25519");
    assert.equal(Buffer.from(key.publicKey).toString("hex"), pk);
    const shared = await kem.decap({ enc: Buffer.from(ct, "hex"), recipientKey: key.privateKey });
    assert.equal(Buffer.from(shared).toString("hex"), ss);
  }
});

test("the first vector's seed is read from its armor", async () => {
  const seed = "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26";
  const armor = xwingFile(Buffer.from(seed, "hex"));
  assert.equal(
    armor,
    "-----BEGIN MLKEM768_X25519 SEED-----\n" +
      "f5wrpOiPgn1hYEVQdgWFPtc7gJP277yI6xpurPpm7yY=\n" +
      "-----END MLKEM768_X25519 SEED-----\n",
  );
  const key = await loadPrivateKey(Buffer.from(armor));
  assert.equal(Buffer.from(key.publicKey).toString("hex"), VECTORS[0].pk);
});

test("a PKCS#8 X25519 key gives the public key node:crypto derives", async () => {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const key = await loadPrivateKey(privateKey.export({ format: "pem", type: "pkcs8" }));
  assert.equal(key.suite, "x25519");
  const expected = publicKey.export({ format: "jwk" }).x;
  assert.equal(Buffer.from(key.publicKey).toString("base64url"), expected);
  assert.equal(
    publicEntry("b1", key),
    `b1:X25519:${Buffer.from(key.publicKey).toString("base64")}`,
  );
});

test("the hybrid key's public entry holds 1216 bytes under its label", async () => {
  const key = await loadPrivateKey(xwingFile());
  const [kid, label, base64] = publicEntry("h1", key).split(":");
  assert.deepEqual([kid, label], ["h1", "MLKEM768_X25519"]);
  assert.equal(Buffer.from(base64, "base64").length, 1216);
});

test("any other file is refused without quoting it", async () => {
  const ed25519 = generateKeyPairSync("ed25519").privateKey;
  const pkcs8 = ed25519.export({ format: "pem", type: "pkcs8" });
  const shortSeed = xwingFile(Buffer.alloc(31, 7));
  const notBase64 = shortSeed.replace("BwcH", "B*cH");
  for (const text of [pkcs8, shortSeed, notBase64, "hello", ""]) {
    await assert.rejects(loadPrivateKey(text), (error) => {
      assert.match(error.message, /^not a SecureGather backend key/);
      const body = text.split("\n")[1] ?? "";
      assert.ok(body === "" || !error.message.includes(body.slice(0, 8)));
      return true;
    });
  }
});

test("a key id comes from the file's name", () => {
  assert.equal(keyIdFromFileName("/etc/sg/backend-b2026a.pem"), "b2026a");
  assert.equal(keyIdFromFileName("keys/h1.pem"), "h1");
  assert.equal(keyIdFromFileName("backend-b1"), "b1");
});
