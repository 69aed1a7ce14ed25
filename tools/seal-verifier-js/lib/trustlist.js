// The signed seal trust list (docs/trust-list.md sections 2-5 and 7).
import crypto from "node:crypto";
import { CborProfileError, decodeStrict } from "./cbor.js";
import { Cert, OID_TRUST_LIST_EKU, PathError, validate } from "./pki.js";
import { sigStructure } from "./seal.js";
import { base32Encode } from "./url.js";

const MAX_FILE = 4 * 1024 * 1024;
const TYP = "application/esign-trust-list+cbor";
const MAX_TIME = 2 ** 40;
const MAX_DAY = 2932896;
const FUTURE_SLACK_MS = 5 * 60 * 1000;

/** The list is refused: `stale` selects TRY_LATER, otherwise NO_CERTIFICATE_CHAIN_FOUND. */
export class ListRefused extends Error {
  constructor(message, stale = false) {
    super(`trust list refused: ${message}`);
    this.stale = stale;
  }
}

const isBytes = (v) => v instanceof Uint8Array;
const isUint = (v) => typeof v === "number" && Number.isInteger(v) && v >= 0;
const malformed = (m) => {
  throw new ListRefused(`malformed (${m})`);
};

function exactKeys(m, keys, optional = []) {
  if (!(m instanceof Map)) return false;
  for (const k of m.keys()) if (!keys.includes(k) && !optional.includes(k)) return false;
  return keys.every((k) => m.has(k));
}

function parseEnvelope(bytes) {
  if (bytes.length > MAX_FILE) malformed("larger than 4 MiB");
  let arr;
  let prot;
  let body;
  try {
    arr = decodeStrict(bytes, { leadingTag18: true });
    if (!Array.isArray(arr) || arr.length !== 4) malformed("not a COSE_Sign1 array of 4");
    const [p, , pl, sig] = arr;
    if (!isBytes(p) || !isBytes(pl) || !isBytes(sig)) malformed("envelope item of the wrong type");
    prot = decodeStrict(p, { deterministic: true });
    body = decodeStrict(pl, { deterministic: true });
  } catch (e) {
    if (e instanceof CborProfileError) malformed(e.message);
    throw e;
  }
  const [p, unprot, pl, sig] = arr;
  if (!exactKeys(prot, [1, 16, 34])) malformed("protected header is not exactly {1, 16, 34}");
  if (prot.get(1) !== -7) malformed("alg is not ES256");
  if (prot.get(16) !== TYP) malformed(`typ is not ${TYP}`);
  const x5t = prot.get(34);
  if (!Array.isArray(x5t) || x5t.length !== 2 || x5t[0] !== -16 || !isBytes(x5t[1]) || x5t[1].length !== 32) {
    malformed("x5t is not [-16, 32-byte SHA-256]");
  }
  if (!exactKeys(unprot, [33])) malformed("unprotected header is not exactly {33: x5chain}");
  let chain = unprot.get(33);
  if (isBytes(chain)) chain = [chain];
  if (!Array.isArray(chain) || chain.length === 0 || !chain.every(isBytes)) malformed("x5chain is not certificates");
  if (sig.length !== 64) malformed("signature is not 64 bytes");
  return { prot: p, payload: pl, sig, x5t: Buffer.from(x5t[1]), chain, body };
}

function parseBody(m) {
  if (!exactKeys(m, [1, 2, 3, 4, 5, 6])) malformed("payload keys are not exactly 1-6");
  if (m.get(1) !== 1) malformed("version is not 1");
  const issued = m.get(2);
  const next = m.get(3);
  if (!isUint(issued) || !isUint(next) || issued >= MAX_TIME || next >= MAX_TIME) malformed("times");
  if (next <= issued) malformed("next_update is not after issued");
  const keysIn = m.get(4);
  if (!Array.isArray(keysIn)) malformed("seal_keys is not an array");
  const keys = [];
  const kids = new Set();
  for (const e of keysIn) {
    if (!exactKeys(e, [1, 2, 3, 4, 5], [6])) malformed("a seal key entry has the wrong keys");
    const kid = e.get(1);
    const agency = e.get(2);
    const cert = e.get(3);
    const from = e.get(4);
    const until = e.get(5);
    const revoked = e.has(6) ? e.get(6) : null;
    if (!isBytes(kid) || kid.length !== 8) malformed("kid is not 8 bytes");
    const n = typeof agency === "string" ? Buffer.byteLength(agency, "utf8") : 0;
    if (n < 1 || n > 32) malformed("agency is not 1-32 bytes of text");
    if (!isBytes(cert)) malformed("certificate is not bytes");
    for (const d of [from, until, ...(revoked === null ? [] : [revoked])]) {
      if (!isUint(d) || d > MAX_DAY) malformed("a day count is out of range");
    }
    if (until < from) malformed("seal_until is before seal_from");
    const hex = Buffer.from(kid).toString("hex");
    if (kids.has(hex)) malformed("a kid appears twice");
    kids.add(hex);
    keys.push({ kid: Buffer.from(kid), agency, certDer: cert, sealFrom: from, sealUntil: until, revokedFrom: revoked });
  }
  const inter = m.get(5);
  if (!Array.isArray(inter) || !inter.every(isBytes)) malformed("intermediates is not an array of bytes");
  const wd = m.get(6);
  if (!(wd instanceof Map)) malformed("withdrawn is not a map");
  const withdrawn = new Map();
  for (const [agency, hashes] of wd) {
    if (typeof agency !== "string") malformed("withdrawn key is not text");
    if (!Array.isArray(hashes) || !hashes.every((h) => isBytes(h) && h.length === 16)) {
      malformed("withdrawn hashes are not 16-byte strings");
    }
    withdrawn.set(agency, new Set(hashes.map((h) => Buffer.from(h).toString("hex"))));
  }
  return { issued, nextUpdate: next, keys, intermediatesDer: inter, withdrawn };
}

function parseCert(der, what) {
  try {
    return new Cert(der);
  } catch {
    throw new ListRefused(`${what} does not parse as a certificate`);
  }
}

/** trust-list.md section 4: subject equals issuer (qr-seal.md section 4.3 names), no
 * signature check, unless both key identifiers are present and differ. */
function selfSigned(cert) {
  if (!cert.selfIssued) return false;
  const ski = cert.ext("2.5.29.14")?.keyId;
  const aki = cert.ext("2.5.29.35")?.keyId;
  return !(ski && aki && ski.toLowerCase() !== aki.toLowerCase());
}

/** Check a list at `at` (ms) against `anchors`; returns its content or throws ListRefused. */
export function checkList(bytes, anchors, at) {
  const env = parseEnvelope(bytes); // 1
  const body = parseBody(env.body);
  const signerDer = env.chain[0];
  if (!crypto.createHash("sha256").update(signerDer).digest().equals(env.x5t)) {
    throw new ListRefused("x5t does not name the x5chain certificate"); // 2
  }
  const signer = parseCert(signerDer, "the signer");
  let ok = false;
  try {
    ok = crypto.verify(
      "sha256",
      sigStructure(env.prot, env.payload),
      { key: signer.publicKey, dsaEncoding: "ieee-p1363" },
      env.sig,
    );
  } catch {
    ok = false;
  }
  if (!ok) throw new ListRefused("its signature does not verify (altered or forged)"); // 3
  // 4: the signer certificate
  if (selfSigned(signer)) throw new ListRefused("the signer is self-signed");
  if (!signer.isP256()) throw new ListRefused("the signer's key is not P-256");
  const chainCas = env.chain.slice(1).map((d, i) => parseCert(d, `x5chain[${i + 1}]`));
  try {
    validate(signer, chainCas, anchors, at, OID_TRUST_LIST_EKU);
  } catch (e) {
    if (e instanceof PathError) throw new ListRefused(`its signer is not accepted: ${e.message}`);
    throw e;
  }
  // 5: kids and certificates
  for (const k of body.keys) {
    k.cert = parseCert(k.certDer, `the certificate of kid ${k.kid.toString("hex")}`);
    if (!k.cert.kid.equals(k.kid)) throw new ListRefused(`kid ${k.kid.toString("hex")} is not its certificate's key id`);
  }
  const intermediates = body.intermediatesDer.map((d) => parseCert(d, "an intermediate"));
  if (body.issued * 1000 > at + FUTURE_SLACK_MS) {
    throw new ListRefused(`issued ${new Date(body.issued * 1000).toISOString()}, in the future`); // 6
  }
  if (!(at < body.nextUpdate * 1000)) {
    const when = new Date(body.nextUpdate * 1000).toISOString();
    throw new ListRefused(`out of date since ${when} (its next update); fetch a current one`, true); // 7
  }
  return { ...body, intermediates, signer };
}

/** The hash under which the list names a withdrawn document (section 7). */
export function withdrawnHash(issuer, number) {
  const b = base32Encode(
    crypto
      .createHash("sha256")
      .update(Buffer.concat([Buffer.from(issuer, "utf8"), Buffer.from([0x1f]), Buffer.from(number, "utf8")]))
      .digest(),
  );
  const documentId = `${b.slice(0, 5)}-${b.slice(5, 10)}`;
  const h = crypto
    .createHash("sha256")
    .update(Buffer.concat([Buffer.from("esign-trust-list-v1 withdrawn document", "ascii"), Buffer.from([0]), Buffer.from(documentId, "ascii")]))
    .digest()
    .subarray(0, 16)
    .toString("hex");
  return { documentId, hash: h };
}
