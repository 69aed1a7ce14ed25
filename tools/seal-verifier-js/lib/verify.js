// Seal verification (docs/qr-seal.md section 8; with a list, docs/trust-list.md section 6).
import crypto from "node:crypto";
import { OID_SEAL_EKU, PathError, agencyOf, validate } from "./pki.js";
import { claimsForReport, decodeSeal, sigStructure } from "./seal.js";
import { ListRefused, checkList, withdrawnHash } from "./trustlist.js";
import { FormatError } from "./url.js";

const DAY_MS = 86400000;
const UB_OFFSET_MS = 8 * 3600 * 1000; // Asia/Ulaanbaatar, UTC+08:00 all year

/** Day count of the Ulaanbaatar calendar date of instant `at` (ms since the epoch). */
export const ubDay = (at) => Math.floor((at + UB_OFFSET_MS) / DAY_MS);
/** 00:00 Ulaanbaatar time of day count `d`, in ms since the epoch. */
export const ubMidnight = (d) => d * DAY_MS - UB_OFFSET_MS;

class Verdict extends Error {
  constructor(indication, subindication, message) {
    super(message);
    this.indication = indication;
    this.subindication = subindication;
  }
}

const result = (indication, subindication, reason, claims) => ({
  indication,
  subindication,
  reason,
  claims: claims ? claimsForReport(claims) : null,
});

function es256Verifies(cert, seal) {
  if (!cert.isP256()) return false; // section 4.1: no other key can verify ES256
  try {
    return crypto.verify(
      "sha256",
      sigStructure(seal.protectedBytes, seal.payloadBytes),
      { key: cert.publicKey, dsaEncoding: "ieee-p1363" },
      seal.signature,
    );
  } catch {
    return false; // r or s = 0 or >= n
  }
}

/** Path validation, profile and issuer binding of a seal certificate (steps 4, 4a, 4b). */
function judgeCertificate(cert, cas, anchors, at, claims) {
  try {
    validate(cert, cas, anchors, at, OID_SEAL_EKU);
    const agency = agencyOf(cert);
    if (agency !== claims.issuer) {
      throw new Verdict(
        "TOTAL-FAILED",
        "ISSUER_MISMATCH",
        `the seal certificate speaks for ${agency}, the seal claims issuer ${claims.issuer}`,
      );
    }
  } catch (e) {
    if (e instanceof PathError) throw new Verdict("INDETERMINATE", e.subindication, e.message);
    throw e;
  }
}

function judgeDates(claims, at) {
  const today = ubDay(at);
  if (claims.expires !== null && today > claims.expires) {
    throw new Verdict("INDETERMINATE", "EXPIRED", "the document has expired (Ulaanbaatar date)");
  }
  if (claims.issued > today) {
    throw new Verdict("INDETERMINATE", "NOT_YET_VALID", "the document's issue date is after today (Ulaanbaatar date)");
  }
}

/**
 * Verify a seal text.
 * opts: { anchors: Cert[], intermediates: Cert[], sealCerts: Cert[], trustList: Buffer|null, at: ms }
 */
export function verifySeal(text, opts) {
  let seal;
  try {
    seal = decodeSeal(text);
  } catch (e) {
    if (e instanceof FormatError) return result("TOTAL-FAILED", "FORMAT_FAILURE", e.message, null);
    return result("TOTAL-FAILED", "FORMAT_FAILURE", `undecodable: ${e.message}`, null);
  }
  try {
    if (opts.trustList) verifyWithList(seal, opts);
    else verifyPublished(seal, opts);
    return result("TOTAL-PASSED", null, "the seal is authentic", seal.claims);
  } catch (e) {
    if (e instanceof Verdict) return result(e.indication, e.subindication, e.message, seal.claims);
    throw e;
  }
}

function verifyPublished(seal, { anchors, intermediates, sealCerts, at }) {
  const candidates = sealCerts.filter((c) => c.kid.equals(seal.kid));
  if (candidates.length === 0) {
    throw new Verdict("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND", `no seal certificate has kid ${seal.kid.toString("hex")}`);
  }
  const cert = candidates.find((c) => es256Verifies(c, seal));
  if (!cert) throw new Verdict("TOTAL-FAILED", "SIG_CRYPTO_FAILURE", "the signature does not verify");
  // Every published certificate is a candidate issuer; the CA constraints then judge it
  // (a non-CA in the seal folder is CHAIN_CONSTRAINTS_FAILURE, not "no path"; SPEC-GAPS.md 7).
  const cas = [...intermediates, ...sealCerts];
  judgeCertificate(cert, cas, anchors, at, seal.claims);
  judgeDates(seal.claims, at);
}

function verifyWithList(seal, { anchors, trustList, at }) {
  let list;
  try {
    list = checkList(trustList, anchors, at);
  } catch (e) {
    if (e instanceof ListRefused) {
      throw new Verdict("INDETERMINATE", e.stale ? "TRY_LATER" : "NO_CERTIFICATE_CHAIN_FOUND", e.message);
    }
    throw e;
  }
  const c = seal.claims;
  const kidHex = seal.kid.toString("hex");
  const entry = list.keys.find((k) => k.kid.equals(seal.kid));
  const listed = new Date(list.issued * 1000).toISOString();
  if (!entry) throw new Verdict("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND", `kid ${kidHex} is not in the trust list of ${listed}`);
  if (!es256Verifies(entry.cert, seal)) throw new Verdict("TOTAL-FAILED", "SIG_CRYPTO_FAILURE", "the signature does not verify");
  const iso = (d) => new Date(d * DAY_MS).toISOString().slice(0, 10);
  if (entry.revokedFrom !== null && !(c.issued < entry.revokedFrom)) {
    throw new Verdict("TOTAL-FAILED", "REVOKED", `key ${kidHex} revoked from ${iso(entry.revokedFrom)}; the seal is dated ${iso(c.issued)}`);
  }
  if (c.issuer !== entry.agency) {
    throw new Verdict("TOTAL-FAILED", "ISSUER_MISMATCH", `the list gives key ${kidHex} to ${entry.agency}, the seal claims ${c.issuer}`);
  }
  if (!(entry.sealFrom <= c.issued && c.issued <= entry.sealUntil)) {
    throw new Verdict(
      "INDETERMINATE",
      "OUT_OF_BOUNDS_NO_POE",
      `key ${kidHex} sealed from ${iso(entry.sealFrom)} to ${iso(entry.sealUntil)}; the seal is dated ${iso(c.issued)}`,
    );
  }
  judgeCertificate(entry.cert, list.intermediates, anchors, ubMidnight(c.issued), c);
  const withdrawn = list.withdrawn.get(c.issuer)?.has(withdrawnHash(c.issuer, c.number).hash);
  try {
    judgeDates(c, at);
  } catch (e) {
    if (withdrawn) throw new Verdict("TOTAL-FAILED", "REVOKED", `withdrawn in the trust list of ${listed}`);
    throw e;
  }
  if (withdrawn) throw new Verdict("TOTAL-FAILED", "REVOKED", `withdrawn in the trust list of ${listed}`);
}
