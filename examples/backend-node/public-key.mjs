/**
 * Prints the public entry SecureGather takes for one of your backend's private key files:
 *
 *     node examples/backend-node/public-key.mjs backend-b1.pem [--id KID]
 *
 * The entry is `KID:X25519:<base64>` or `KID:MLKEM768_X25519:<base64>`, for
 * SECUREGATHER_BACKEND_PUBLIC_KEYS; the key id is the file's name after "backend-" up to ".pem"
 * unless --id names it. The private key itself is never printed.
 */

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { keyIdFromFileName, loadPrivateKey, publicEntry } from "./receiver.mjs";

/** The key id SecureGather accepts: 1 to 32 of A-Z a-z 0-9 _ -. */
const KID = /^[A-Za-z0-9_-]{1,32}$/;

async function main() {
  const { values, positionals } = parseArgs({
    options: { id: { type: "string" } },
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new Error("usage: public-key.mjs FILE [--id KID]");
  const [path] = positionals;
  const kid = values.id ?? keyIdFromFileName(path);
  if (!KID.test(kid)) throw new Error("a key id takes 1 to 32 of A-Z a-z 0-9 _ -");
  let text;
  try {
    text = readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read ${path}: ${error.code}`);
  }
  let key;
  try {
    key = await loadPrivateKey(text);
  } catch (error) {
    throw new Error(`${path}: ${error.message}`);
  }
  process.stdout.write(`${publicEntry(kid, key)}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
