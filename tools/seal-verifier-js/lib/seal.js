// COSE_Sign1 envelope (section 3) and claim profile (section 5) of the QR seal.
import { CborProfileError, decodeStrict } from "./cbor.js";
import { FormatError, sealBytes } from "./url.js";

const MAX_DAY = 2932896; // 9999-12-31
const TEXT_LIMITS = new Map([
  [2, ["issuer", 32]],
  [3, ["doc_type", 32]],
  [4, ["number", 64]],
  [7, ["subject_name", 256]],
  [8, ["subject_id", 32]],
]);
const REQUIRED = [1, 2, 3, 4, 5, 7, 8, 9];
const DEFINED = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9]);
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const EDGE_SPACE = /^\p{Zs}|\p{Zs}$/u;

const isBytes = (v) => v instanceof Uint8Array;
const isUint = (v) => (typeof v === "number" && Number.isInteger(v) && v >= 0) || (typeof v === "bigint" && v >= 0n);

function fail(msg) {
  throw new FormatError(msg);
}

/** Day count -> ISO date. */
export function dayToIso(d) {
  return new Date(Number(d) * 86400000).toISOString().slice(0, 10);
}

function checkText(name, limit, v) {
  if (typeof v !== "string") fail(`claim ${name} is not a text string`);
  const n = Buffer.byteLength(v, "utf8");
  if (n < 1 || n > limit) fail(`claim ${name} has ${n} UTF-8 bytes (1-${limit} allowed)`);
  if (v.normalize("NFC") !== v) fail(`claim ${name} is not in Unicode NFC`);
  if (INVISIBLE.test(v)) fail(`claim ${name} holds a control, format or line-breaking character`);
  if (EDGE_SPACE.test(v)) fail(`claim ${name} begins or ends with white space`);
}

function parseClaims(payloadBytes) {
  const m = decodeStrict(payloadBytes, { deterministic: true });
  if (!(m instanceof Map)) fail("the payload is not a map");
  for (const k of m.keys()) {
    if (!isUint(k)) fail("a claim key is not an unsigned integer");
    if (k < 24 && !DEFINED.has(Number(k))) fail(`claim key ${k} is reserved`);
  }
  for (const k of REQUIRED) if (!m.has(k)) fail(`claim ${k} is missing`);
  if (m.get(1) !== 1) fail("version (claim 1) is not 1");
  for (const [k, [name, limit]] of TEXT_LIMITS) checkText(name, limit, m.get(k));
  const issued = m.get(5);
  if (!isUint(issued) || issued > MAX_DAY) fail("issued (claim 5) is not a day count <= 2932896");
  let expires = null;
  if (m.has(6)) {
    expires = m.get(6);
    if (!isUint(expires) || expires > MAX_DAY) fail("expires (claim 6) is not a day count <= 2932896");
    if (expires < issued) fail("expires (claim 6) is before issued (claim 5)");
  }
  const digest = m.get(9);
  if (!isBytes(digest) || digest.length !== 16) fail("fields_digest (claim 9) is not 16 bytes");
  return {
    issuer: m.get(2),
    doc_type: m.get(3),
    number: m.get(4),
    issued: Number(issued),
    expires: expires === null ? null : Number(expires),
    subject_name: m.get(7),
    subject_id: m.get(8),
    fields_digest: Buffer.from(digest).toString("hex"),
  };
}

/** Claims as the vectors write them (ISO dates). */
export function claimsForReport(c) {
  return { ...c, issued: dayToIso(c.issued), expires: c.expires === null ? null : dayToIso(c.expires) };
}

/**
 * Decode a seal text: URL, base32, COSE_Sign1, headers, claims.
 * Throws FormatError (malformed) with a one-line reason.
 */
export function decodeSeal(text) {
  try {
    const bytes = sealBytes(text);
    const arr = decodeStrict(bytes, { leadingTag18: true });
    if (!Array.isArray(arr) || arr.length !== 4) fail("COSE_Sign1 is not an array of 4 items");
    const [prot, unprot, payload, signature] = arr;
    if (!isBytes(prot)) fail("protected header is not a byte string");
    if (!(unprot instanceof Map) || unprot.size !== 0) fail("unprotected header is not the empty map");
    if (!isBytes(payload)) fail("payload is not an embedded byte string");
    if (!isBytes(signature) || signature.length !== 64) fail("signature is not 64 bytes (r || s)");
    const h = decodeStrict(prot, { deterministic: true });
    if (!(h instanceof Map) || h.size !== 2 || !h.has(1) || !h.has(4)) {
      fail("protected header is not exactly {1: alg, 4: kid}");
    }
    if (h.get(1) !== -7) fail("alg is not ES256 (-7)");
    const kid = h.get(4);
    if (!isBytes(kid) || kid.length !== 8) fail("kid is not 8 bytes");
    const claims = parseClaims(payload);
    return { protectedBytes: prot, payloadBytes: payload, signature, kid: Buffer.from(kid), claims };
  } catch (e) {
    if (e instanceof CborProfileError) throw new FormatError(e.message);
    throw e;
  }
}

/** RFC 9052 Sig_structure for COSE_Sign1 with empty external AAD, built by hand
 * so that `protected` and `payload` go in exactly as received. */
export function sigStructure(protectedBytes, payloadBytes) {
  const head = (mt, n) => {
    if (n < 24) return Buffer.from([(mt << 5) | n]);
    if (n < 0x100) return Buffer.from([(mt << 5) | 24, n]);
    if (n < 0x10000) return Buffer.from([(mt << 5) | 25, n >> 8, n & 0xff]);
    const b = Buffer.alloc(5);
    b[0] = (mt << 5) | 26;
    b.writeUInt32BE(n, 1);
    return b;
  };
  const ctx = Buffer.from("Signature1");
  return Buffer.concat([
    Buffer.from([0x84]),
    head(3, ctx.length),
    ctx,
    head(2, protectedBytes.length),
    protectedBytes,
    Buffer.from([0x40]),
    head(2, payloadBytes.length),
    payloadBytes,
  ]);
}
