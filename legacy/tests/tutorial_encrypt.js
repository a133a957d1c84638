// Encrypts each argument exactly as the AES Function of Twilio's tutorial does
// (aes-256-gcm, key from hex, 12-byte nonce, 16-byte tag, hex of nonce ‖ ciphertext ‖ tag)
// and prints the ciphertexts as a JSON array. The key comes from AES_SECRET, as in a Function.
// With --body, prints the JSON body the tutorial's Function posts to decrypt-gather instead.
//
//   AES_SECRET=<64 hex> node tutorial_encrypt.js 1234 4321
//   AES_SECRET=<64 hex> node tutorial_encrypt.js --body 1234 4321
const crypto = require("crypto");

const ALGORITHM = {
  BLOCK_CIPHER: "aes-256-gcm",
  AUTH_TAG_BYTE_SIZE: 16,
  IV_BYTE_SIZE: 12,
};

const encrypt = (plainText, key) => {
  const nonce = crypto.randomBytes(ALGORITHM.IV_BYTE_SIZE);
  const cipher = crypto.createCipheriv(ALGORITHM.BLOCK_CIPHER, Buffer.from(key, "hex"), nonce, {
    authTagLength: ALGORITHM.AUTH_TAG_BYTE_SIZE,
  });
  const cipherText = Buffer.concat([
    nonce,
    cipher.update(plainText),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return cipherText.toString("hex");
};

const key = process.env.AES_SECRET;
if (!key || Buffer.from(key, "hex").length !== 32) {
  console.error("AES_SECRET must be 64 hex characters");
  process.exit(2);
}
const args = process.argv.slice(2);
if (args[0] === "--body") {
  const [encryptedCardDigits, encryptedPinDigits] = args.slice(1).map((d) => encrypt(d, key));
  console.log(JSON.stringify({ encryptedCardDigits, encryptedPinDigits }));
} else {
  console.log(JSON.stringify(args.map((digits) => encrypt(digits, key))));
}
