import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  Receiver,
  found,
  idempotencyKey,
  locked,
  notFound,
  sign,
} from "../receiver.mjs";
import { CALL, NOW, SECRET, keys, request, seal } from "./sealing.mjs";

// Digits no other part of a request holds, so a test can look for them anywhere.
const CARD = "8642";
const PIN = "9753";
const OTHER_CALL = "CAfedcba9876543210fedcba9876543210";

const KEYS = await keys();

/** A receiver whose check records its calls and answers `answer`. */
function receiver(answer = found("AC12345678", "12.55", "acct_5f0c9e2a41d7"), now = NOW) {
  const calls = [];
  const check = (card, pin, caller) => {
    calls.push([card, pin, caller]);
    return answer;
  };
  const target = new Receiver({ secret: SECRET, privateKeys: KEYS, check, now: () => now });
  return { receiver: target, calls };
}

/** The card and PIN tokens of one call, card to b1 (X25519) and PIN to h1 (X-Wing). */
async function tokens({ card = CARD, pin = PIN, callSid = CALL } = {}) {
  return {
    card: await seal(KEYS.get("b1"), "b1", card, "card", callSid),
    pin: await seal(KEYS.get("h1"), "h1", pin, "pin", callSid),
  };
}

async function deliver(target, fields, options) {
  const { headers, body } = request(fields, options);
  return target.handle(headers, body);
}

describe("answers", () => {
  test("found reaches the check with the digits and the caller", async () => {
    const { receiver: target, calls } = receiver();
    const result = await deliver(target, await tokens());
    assert.deepEqual(result, {
      status: 200,
      answer: {
        status: "found",
        account: "AC12345678",
        balance: "12.55",
        account_ref: "acct_5f0c9e2a41d7",
      },
    });
    assert.deepEqual(calls, [[CARD, PIN, "+15005550006"]]);
  });

  test("both tokens of one suite open, X25519 and X-Wing alike", async () => {
    for (const kid of ["b1", "h1"]) {
      const { receiver: target, calls } = receiver(notFound());
      const card = await seal(KEYS.get(kid), kid, CARD, "card");
      const pin = await seal(KEYS.get(kid), kid, PIN, "pin");
      const result = await deliver(target, { card, pin });
      assert.deepEqual(result, { status: 200, answer: { status: "not_found" } });
      assert.deepEqual(calls, [[CARD, PIN, "+15005550006"]]);
    }
  });

  test("not_found with a reference, and locked, are passed on as they are", async () => {
    for (const answer of [notFound("acct_1"), locked()]) {
      const { receiver: target } = receiver(answer);
      assert.deepEqual(await deliver(target, await tokens()), { status: 200, answer });
    }
    assert.deepEqual(notFound("acct_1"), { status: "not_found", account_ref: "acct_1" });
    assert.deepEqual(found("AC1", "1.00"), { status: "found", account: "AC1", balance: "1.00" });
  });

  test("an async check is awaited", async () => {
    const check = async () => locked();
    const target = new Receiver({ secret: SECRET, privateKeys: KEYS, check, now: () => NOW });
    assert.deepEqual(await deliver(target, await tokens()), {
      status: 200,
      answer: { status: "locked" },
    });
  });

  test("header names are read in any case, from an object or a Map", async () => {
    const { receiver: target, calls } = receiver();
    const { headers, body } = request(await tokens());
    const entries = Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]);
    const lowered = new Map(entries);
    assert.equal((await target.handle(lowered, body)).status, 200);
    assert.equal(calls.length, 1);
  });
});

describe("signature and time", () => {
  test("a body changed after signing is refused before anything opens", async () => {
    const { receiver: target, calls } = receiver();
    const { headers, body } = request(await tokens());
    const tampered = Buffer.from(body.toString().replace("+15005550006", "+15005550007"));
    assert.deepEqual(await target.handle(headers, tampered), {
      status: 401,
      answer: { error: "bad signature" },
    });
    assert.equal(calls.length, 0);
  });

  test("a request signed with another secret is refused", async () => {
    const { receiver: target } = receiver();
    const result = await deliver(target, await tokens(), { secret: "another-secret-".repeat(3) });
    assert.deepEqual(result, { status: 401, answer: { error: "bad signature" } });
  });

  test("a timestamp more than 300 s away, or not digits, is refused", async () => {
    for (const timestamp of [String(NOW - 301), String(NOW + 301), "1796646000.5", " 1796646000"]) {
      const { receiver: target, calls } = receiver();
      assert.deepEqual(await deliver(target, await tokens(), { timestamp }), {
        status: 401,
        answer: { error: "stale or future timestamp" },
      });
      assert.equal(calls.length, 0);
    }
  });

  test("a timestamp 300 s away is still accepted", async () => {
    const { receiver: target } = receiver();
    const result = await deliver(target, await tokens(), { timestamp: String(NOW - 300) });
    assert.equal(result.status, 200);
  });

  test("sign() and idempotencyKey() give what Python's hmac and hashlib give", () => {
    const expected = "v1=36543ce1feab7ada5397f198ea4c95416694b7b94f851999996900c2f266a9fd";
    assert.equal(sign("k", "1796646000", '{"a": 1}'), expected);
    assert.equal(sign(Buffer.from("k"), "1796646000", Buffer.from('{"a": 1}')), expected);
    assert.equal(idempotencyKey(CALL), "3aaad6c19284e92e70f7c5b39b0000f9");
  });
});

describe("the request's fields", () => {
  test("a body that is not JSON, or lacks a field, is malformed", async () => {
    const { receiver: target } = receiver();
    const signed = (body) => ({
      "X-SecureGather-Timestamp": String(NOW),
      "X-SecureGather-Signature": sign(SECRET, String(NOW), body),
    });
    for (const body of ["not json", "[]", "null", JSON.stringify({ call_sid: CALL })]) {
      assert.deepEqual(await target.handle(signed(body), body), {
        status: 400,
        answer: { error: "malformed request" },
      });
    }
    const result = await deliver(target, { ...(await tokens()), caller: undefined });
    assert.deepEqual(result, { status: 400, answer: { error: "malformed request" } });
  });

  test("a body timestamp other than the signed header's is refused", async () => {
    const { receiver: target } = receiver();
    const result = await deliver(target, { ...(await tokens()), timestamp: String(NOW - 1) });
    assert.deepEqual(result, {
      status: 400,
      answer: { error: "timestamp differs from the signed header" },
    });
  });

  test("the idempotency key must be the call's", async () => {
    const { receiver: target } = receiver();
    const fields = { ...(await tokens()), idempotency_key: idempotencyKey(OTHER_CALL) };
    assert.deepEqual(await deliver(target, fields), {
      status: 400,
      answer: { error: "idempotency key is not the call's" },
    });
  });
});

describe("replays", () => {
  test("a redelivery gets the first answer, marked replayed, without a second check", async () => {
    const { receiver: target, calls } = receiver();
    const { headers, body } = request(await tokens());
    const first = await target.handle(headers, body);
    const second = await target.handle(headers, body);
    assert.deepEqual(second, { status: 200, answer: { ...first.answer, replayed: true } });
    assert.equal(calls.length, 1);
  });

  test("the same key with another body is refused", async () => {
    const { receiver: target, calls } = receiver();
    await deliver(target, await tokens());
    const result = await deliver(target, await tokens());
    assert.deepEqual(result, {
      status: 409,
      answer: { error: "idempotency key reused for another request" },
    });
    assert.equal(calls.length, 1);
  });

  test("a ciphertext seen before is refused under another call's key", async () => {
    const { receiver: target, calls } = receiver();
    const first = await tokens();
    await deliver(target, first);
    const moved = { ...(await tokens({ callSid: OTHER_CALL })), call_sid: OTHER_CALL };
    moved.card = first.card;
    assert.deepEqual(await deliver(target, moved), {
      status: 409,
      answer: { error: "ciphertext already used" },
    });
    assert.equal(calls.length, 1);
  });

  test("a ciphertext respelled in base64's unused bits is the same ciphertext", async () => {
    const { receiver: target } = receiver();
    const first = await tokens();
    await deliver(target, first);
    // 52 bytes of X25519 token end in two characters that carry 8 bits: the last one's low 4
    // bits are unused, and flipping one changes the spelling, not a byte.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = first.card.at(-1);
    const respelled = first.card.slice(0, -1) + alphabet[alphabet.indexOf(last) ^ 1];
    assert.notEqual(respelled, first.card);
    const body = (token) => Buffer.from(token.split(".")[3], "base64url");
    assert.deepEqual(body(respelled), body(first.card));
    const moved = { ...(await tokens({ callSid: OTHER_CALL })), call_sid: OTHER_CALL };
    moved.card = respelled;
    assert.deepEqual(await deliver(target, moved), {
      status: 409,
      answer: { error: "ciphertext already used" },
    });
  });

  test("two deliveries at once call the check once, and both get its answer", async () => {
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    let calls = 0;
    const check = async () => {
      calls += 1;
      await gate;
      return notFound("acct_1");
    };
    const target = new Receiver({ secret: SECRET, privateKeys: KEYS, check, now: () => NOW });
    const { headers, body } = request(await tokens());
    const first = target.handle(headers, body);
    const second = target.handle(headers, body);
    release();
    assert.deepEqual(await first, {
      status: 200,
      answer: { status: "not_found", account_ref: "acct_1" },
    });
    assert.deepEqual(await second, {
      status: 200,
      answer: { status: "not_found", account_ref: "acct_1", replayed: true },
    });
    assert.equal(calls, 1);
  });

  test("a redelivery of a refused request gets the same refusal, not 'already used'", async () => {
    const { receiver: target, calls } = receiver();
    const swapped = await tokens({ card: "12345" });
    const { headers, body } = request(swapped);
    const refusal = { status: 400, answer: { error: "sealed values are not 4 digits" } };
    const [first, second] = await Promise.all([
      target.handle(headers, body),
      target.handle(headers, body),
    ]);
    assert.deepEqual([first, second], [refusal, refusal]);
    assert.deepEqual(await target.handle(headers, body), refusal);
    assert.equal(calls.length, 0);
  });

  test("a redelivery after a check that threw is checked again", async () => {
    let down = true;
    const checked = [];
    const check = (card, pin, caller) => {
      checked.push(card);
      if (down) throw new Error("the accounts database is down");
      return found("AC12345678", "12.55");
    };
    const target = new Receiver({ secret: SECRET, privateKeys: KEYS, check, now: () => NOW });
    const { headers, body } = request(await tokens());
    await assert.rejects(target.handle(headers, body), /the accounts database is down/);
    down = false;
    const { status, answer } = await target.handle(headers, body);
    assert.deepEqual([status, answer.status, checked.length], [200, "found", 2]);
  });

  test("what is remembered is forgotten after 600 s", async () => {
    let now = NOW;
    const check = () => notFound();
    const target = new Receiver({ secret: SECRET, privateKeys: KEYS, check, now: () => now });
    const first = await tokens();
    await deliver(target, first);
    now = NOW + 601;
    // Signed anew for the later time: the ciphertext is no longer known, so it is opened, and
    // it does not open under another call.
    const moved = { ...(await tokens({ callSid: OTHER_CALL })), call_sid: OTHER_CALL };
    moved.card = first.card;
    assert.deepEqual(await deliver(target, moved, { timestamp: String(now) }), {
      status: 400,
      answer: { error: "card: does not open for this purpose and call" },
    });
  });
});

describe("tokens", () => {
  test("a card and PIN swapped do not open", async () => {
    const { receiver: target, calls } = receiver();
    const b1 = KEYS.get("b1");
    const swapped = {
      card: await seal(b1, "b1", PIN, "pin"),
      pin: await seal(b1, "b1", CARD, "card"),
    };
    assert.deepEqual(await deliver(target, swapped), {
      status: 400,
      answer: { error: "card: does not open for this purpose and call" },
    });
    assert.equal(calls.length, 0);
  });

  test("tokens sealed for another call do not open under this one", async () => {
    const { receiver: target } = receiver();
    const result = await deliver(target, await tokens({ callSid: OTHER_CALL }));
    assert.deepEqual(result, {
      status: 400,
      answer: { error: "card: does not open for this purpose and call" },
    });
  });

  test("a key id of the other suite is named as such", async () => {
    const { receiver: target } = receiver();
    const good = await tokens();
    const card = await seal(KEYS.get("b1"), "b1", CARD, "card", CALL, "mlkem768x25519");
    assert.deepEqual(await deliver(target, { ...good, card }), {
      status: 400,
      answer: { error: "card: key b1 is not a mlkem768x25519 key" },
    });
    const pin = await seal(KEYS.get("h1"), "h1", PIN, "pin", CALL, "x25519");
    assert.deepEqual(await deliver(target, { ...good, pin }), {
      status: 400,
      answer: { error: "pin: key h1 is not a x25519 key" },
    });
  });

  test("each malformed token is refused with its own reason", async () => {
    const good = await tokens();
    const body = good.pin.split(".")[3];
    const cases = [
      ["pin", "hpke1.rsa.h1." + body, "pin: not a token of a known suite"],
      ["pin", "hpke1.constructor.h1." + body, "pin: not a token of a known suite"],
      ["pin", "hpke2.mlkem768x25519.h1." + body, "pin: not a token of a known suite"],
      ["pin", "hpke1.mlkem768x25519.h9." + body, "pin: unknown key id h9"],
      ["pin", "hpke1.mlkem768x25519.h1." + body + "A", "pin: not base64url"],
      ["pin", "hpke1.mlkem768x25519.h1." + body.slice(0, 1512), "pin: too short"],
      ["card", "hpke1.x25519.b1." + "A".repeat(64), "card: too short"],
    ];
    for (const [field, token, reason] of cases) {
      const { receiver: target, calls } = receiver();
      const result = await deliver(target, { ...(await tokens()), [field]: token });
      assert.deepEqual(result, { status: 400, answer: { error: reason } }, reason);
      assert.equal(calls.length, 0);
    }
  });

  test("values other than 4 ASCII digits are refused", async () => {
    for (const [card, pin] of [["864", PIN], [CARD, "97531"], ["86a2", PIN], [CARD, "٩٧٥٣"]]) {
      const { receiver: target, calls } = receiver();
      assert.deepEqual(await deliver(target, await tokens({ card, pin })), {
        status: 400,
        answer: { error: "sealed values are not 4 digits" },
      });
      assert.equal(calls.length, 0);
    }
  });
});

test("no refusal carries a digit the caller typed", async () => {
  const answers = [];
  const { receiver: target } = receiver();
  const good = await tokens();
  const b1 = KEYS.get("b1");
  const requests = [
    { ...good, pin: await seal(b1, "b1", PIN, "card") },
    await tokens({ callSid: OTHER_CALL }),
    { ...good, card: await seal(b1, "b1", CARD + "0", "card") },
    { ...good, caller: undefined },
  ];
  for (const fields of requests) answers.push((await deliver(target, fields)).answer);
  answers.push((await deliver(target, good, { timestamp: String(NOW - 999) })).answer);
  const text = JSON.stringify(answers);
  assert.equal(answers.filter((answer) => "error" in answer).length, answers.length);
  assert.ok(!text.includes(CARD) && !text.includes(PIN), text);
});

test("a receiver refuses to start with a short secret or a key not loaded", () => {
  const check = () => notFound();
  assert.throws(
    () => new Receiver({ secret: "x".repeat(31), privateKeys: KEYS, check }),
    /at least 32 characters/,
  );
  assert.throws(
    () => new Receiver({ secret: undefined, privateKeys: KEYS, check }),
    /at least 32 characters/,
  );
  const pending = { b1: Promise.resolve(KEYS.get("b1")) };
  assert.throws(
    () => new Receiver({ secret: SECRET, privateKeys: pending, check }),
    /^Error: key b1 is not loadPrivateKey\(\)'s result$/,
  );
});
