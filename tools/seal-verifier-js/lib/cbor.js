// Strict CBOR for the seal profile (docs/qr-seal.md section 7).
//
// Two layers: `scanProfile` walks the raw bytes and enforces what a general CBOR
// library does not (major types 0-5 only, no tags but a leading 18, shortest-form
// arguments, declared lengths bounded by what remains, nesting depth, no trailing
// bytes), before anything is allocated. Then the cbor2 library decodes the value
// with its own strictness options, and for `protected`/`payload` checks the
// core-deterministic key order (RFC 8949 section 4.2.1) as a second, independent
// opinion on the encoding.
import { decode, Tag, Simple } from "cbor2";
import { sortCoreDeterministic } from "cbor2/sorts";

export class CborProfileError extends Error {}

const MAX_DEPTH = 4;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Check that `bytes` is exactly one data item in the profile.
 * With `leadingTag18`, the item must be tag 18 (one-byte form d2) enclosing it.
 */
export function scanProfile(bytes, { leadingTag18 = false } = {}) {
  let pos = 0;
  if (leadingTag18) {
    if (bytes.length === 0 || bytes[0] !== 0xd2) {
      throw new CborProfileError("it does not begin with tag 18 (d2)");
    }
    pos = 1;
  }
  const end = item(bytes, pos, 0);
  if (end !== bytes.length) {
    throw new CborProfileError(`${bytes.length - end} byte(s) after the data item`);
  }
}

function argument(bytes, pos) {
  const ib = bytes[pos];
  const ai = ib & 0x1f;
  if (ai < 24) return { value: BigInt(ai), next: pos + 1 };
  if (ai >= 28) {
    throw new CborProfileError(
      ai === 31 ? "indefinite length" : `reserved additional information ${ai}`,
    );
  }
  const n = 1 << (ai - 24); // 1, 2, 4, 8
  if (pos + 1 + n > bytes.length) throw new CborProfileError("argument runs past the end");
  let v = 0n;
  for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(bytes[pos + 1 + i]);
  const min = [24n, 0x100n, 0x10000n, 0x100000000n][ai - 24];
  if (v < min) throw new CborProfileError("argument not in its shortest form");
  return { value: v, next: pos + 1 + n };
}

function item(bytes, pos, depth) {
  if (pos >= bytes.length) throw new CborProfileError("unexpected end of data");
  const mt = bytes[pos] >> 5;
  if (mt === 6) throw new CborProfileError("a tag where none is allowed");
  if (mt === 7) throw new CborProfileError("a float or simple value (major type 7)");
  const { value, next } = argument(bytes, pos);
  const remaining = BigInt(bytes.length - next);
  switch (mt) {
    case 0:
    case 1:
      return next;
    case 2:
    case 3: {
      if (value > remaining) throw new CborProfileError("string longer than the input");
      const stop = next + Number(value);
      if (mt === 3) {
        try {
          utf8.decode(bytes.subarray(next, stop));
        } catch {
          throw new CborProfileError("text string is not valid UTF-8");
        }
      }
      return stop;
    }
    case 4:
    case 5: {
      if (depth + 1 > MAX_DEPTH) throw new CborProfileError("nested deeper than 4 levels");
      const count = mt === 5 ? value * 2n : value;
      if (count > remaining) throw new CborProfileError("container larger than the input");
      let p = next;
      const keys = new Set();
      for (let i = 0n; i < count; i++) {
        const start = p;
        p = item(bytes, p, depth + 1);
        if (mt === 5 && i % 2n === 0n) {
          const k = Buffer.from(bytes.subarray(start, p)).toString("hex");
          if (keys.has(k)) throw new CborProfileError("repeated map key");
          keys.add(k);
        }
      }
      return p;
    }
  }
  throw new CborProfileError("unreachable");
}

function rejectExotic(v) {
  if (v instanceof Tag) throw new CborProfileError("a tag inside the data");
  if (v instanceof Simple || v === undefined || v === null || typeof v === "boolean") {
    throw new CborProfileError("a simple value");
  }
  if (typeof v === "number" && !Number.isInteger(v)) throw new CborProfileError("a float");
  if (Array.isArray(v)) v.forEach(rejectExotic);
  if (v instanceof Map) for (const [k, x] of v) (rejectExotic(k), rejectExotic(x));
}

/**
 * Decode one profile-conforming item. `deterministic` additionally requires the
 * core-deterministic map key order. Maps come back as Map, byte strings as
 * Uint8Array, integers as number or bigint.
 */
export function decodeStrict(bytes, { deterministic = false, leadingTag18 = false } = {}) {
  scanProfile(bytes, { leadingTag18 });
  let value;
  try {
    value = decode(bytes, {
      preferMap: true,
      requirePreferred: true,
      rejectStreaming: true,
      rejectDuplicateKeys: true,
      rejectFloats: true,
      rejectSimple: true,
      rejectUndefined: true,
      sortKeys: deterministic ? sortCoreDeterministic : null,
      maxDepth: 16, // cbor2 counts differently (arrays twice); the scan above enforces 4
      tags: new Map(),
    });
  } catch (e) {
    throw new CborProfileError(`CBOR: ${e.message}`);
  }
  if (leadingTag18) {
    if (!(value instanceof Tag) || Number(value.tag) !== 18) {
      throw new CborProfileError("not tag 18");
    }
    rejectExotic(value.contents);
    return value.contents;
  }
  rejectExotic(value);
  return value;
}
