// From the scanned text to the COSE bytes (docs/qr-seal.md section 1), step by step.
export class FormatError extends Error {}

const MAX_TEXT = 4096;
const MAX_BYTES = 1024;
const TRIM = new Set(["\t", "\n", "\v", "\f", "\r", " "]);
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** The canonical (upper-case) base32 payload of a seal text. */
export function payloadText(text) {
  // 1. Length, of the text exactly as received. JS strings count UTF-16 units;
  //    a non-ASCII text is refused by step 2 anyway, so the verdict is the same.
  if (text.length > MAX_TEXT) throw new FormatError(`the text is longer than ${MAX_TEXT} characters`);
  // 2. ASCII, before any case change.
  if (!/^[\x00-\x7f]*$/.test(text)) throw new FormatError("the text holds a non-ASCII character");
  // 3. Trim exactly TAB LF VT FF CR SPACE (not String.prototype.trim).
  let a = 0;
  let b = text.length;
  while (a < b && TRIM.has(text[a])) a++;
  while (b > a && TRIM.has(text[b - 1])) b--;
  let t = text.slice(a, b);
  // 4. Find the payload.
  let payload;
  if (!t.includes("/") && !t.includes(":")) {
    payload = t;
  } else {
    const hash = t.indexOf("#");
    if (hash >= 0) t = t.slice(0, hash);
    const q = t.indexOf("?");
    if (q >= 0) t = t.slice(0, q);
    const at = Math.max(t.lastIndexOf("/V/"), t.lastIndexOf("/v/"));
    if (at < 0) throw new FormatError("no /V/ marker in the URL");
    payload = t.slice(at + 3).replace(/\/+$/, "");
  }
  // 5. Base32 text checks (decoding is `base32Decode`).
  payload = payload.replace(/[a-z]/g, (c) => c.toUpperCase());
  if (payload.length === 0) throw new FormatError("the payload is empty");
  if (!/^[A-Z2-7]+$/.test(payload)) throw new FormatError("the payload is not base32 (A-Z, 2-7)");
  if (![0, 2, 4, 5, 7].includes(payload.length % 8)) {
    throw new FormatError("the payload length is not a whole number of bytes");
  }
  if (Math.floor((payload.length * 5) / 8) > MAX_BYTES) {
    throw new FormatError(`the seal is larger than ${MAX_BYTES} bytes`);
  }
  return payload;
}

/** RFC 4648 section 6 decoding, refusing non-zero unused bits. */
export function base32Decode(s) {
  const out = new Uint8Array(Math.floor((s.length * 5) / 8));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (const ch of s) {
    acc = (acc << 5) | ALPHABET.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (acc !== 0) throw new FormatError("the last base32 character has stray low bits");
  return out;
}

/** RFC 4648 section 6 encoding, upper case, no padding (used for document ids). */
export function base32Encode(bytes) {
  let out = "";
  let bits = 0;
  let acc = 0;
  for (const byte of bytes) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

export function sealBytes(text) {
  return base32Decode(payloadText(text));
}
