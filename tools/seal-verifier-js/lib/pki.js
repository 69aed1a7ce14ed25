// Certificates and offline path validation (docs/qr-seal.md sections 4.1-4.4,
// docs/trust-list.md section 4). Parsing by @peculiar/x509, signatures by
// node:crypto (OpenSSL); the path rules are those of the spec, written out.
import "reflect-metadata";
import crypto from "node:crypto";
import fs from "node:fs";
import * as x509 from "@peculiar/x509";

export const OID_SEAL_EKU = "2.25.187697793891391668806884730963693754825";
export const OID_TRUST_LIST_EKU = "2.25.322411119705745722155537351085089429989";
const OID_ORG_ID = "2.5.4.97";
const KU_DIGITAL_SIGNATURE = 1;
const KU_KEY_CERT_SIGN = 32;

// Exactly the list of qr-seal.md section 4.3 step 4: AKI, SKI, key usage, certificate
// policies, policy mappings, SAN, basic constraints, name constraints, policy constraints,
// EKU, CRL distribution points, inhibitAnyPolicy, freshest CRL, AIA, OCSP no-check,
// qcStatements, AA controls. (issuerAltName, subjectDirectoryAttributes and
// subjectInfoAccess, also in RFC 5280 section 4.2, are not listed: critical, they fail.)
const RECOGNISED = new Set([
  "2.5.29.35", "2.5.29.14", "2.5.29.15", "2.5.29.32", "2.5.29.33", "2.5.29.17", "2.5.29.19",
  "2.5.29.30", "2.5.29.36", "2.5.29.37", "2.5.29.31", "2.5.29.54", "2.5.29.46",
  "1.3.6.1.5.5.7.1.1", "1.3.6.1.5.5.7.48.1.5", "1.3.6.1.5.5.7.1.3", "1.3.6.1.5.5.7.1.6",
]);
// State crypto policy (section 4.4): signature algorithm OIDs.
const ALLOWED_SIG = new Set([
  "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4", // ecdsa-with-SHA256/384/512
  "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", // sha*WithRSAEncryption
  "1.2.840.113549.1.1.10", // RSASSA-PSS (hash checked below)
]);

export class PathError extends Error {
  constructor(subindication, message) {
    super(message);
    this.subindication = subindication;
  }
}

/** A parsed certificate with what the checks need. */
export class Cert {
  constructor(der) {
    this.der = Buffer.from(der);
    this.x = new x509.X509Certificate(this.der);
    this.node = new crypto.X509Certificate(this.der);
    const asn = this.x.asn; // @peculiar/asn1-x509 Certificate
    this.subjectKey = nameKey(this.x.subjectName);
    this.issuerKey = nameKey(this.x.issuerName);
    this.sigOid = asn.signatureAlgorithm.algorithm;
    this.sigAlg = this.x.signatureAlgorithm;
    this.notBefore = this.x.notBefore.getTime();
    this.notAfter = this.x.notAfter.getTime();
    this.publicKey = this.node.publicKey;
    this.kid = crypto.createHash("sha256").update(this.der).digest().subarray(0, 8);
    this.name = this.x.subject;
  }

  ext(oid) {
    return this.x.extensions.find((e) => e.type === oid);
  }

  get selfIssued() {
    return this.subjectKey === this.issuerKey;
  }

  /** Does `issuer`'s key verify this certificate's signature? */
  signedBy(issuer) {
    try {
      return this.node.verify(issuer.publicKey);
    } catch {
      return false;
    }
  }

  /** Extended key usage OIDs, decoded from the DER here because asn1js renders
   * arcs above 2^53 (the 2.25 UUID arc) wrongly. */
  ekus() {
    const e = this.ext("2.5.29.37");
    return e ? decodeOidSequence(Buffer.from(e.value)) : null;
  }

  keyUsage() {
    const e = this.ext("2.5.29.15");
    return e ? e.usages : null;
  }

  orgIds() {
    return this.x.subjectName.getField(OID_ORG_ID);
  }

  isP256() {
    const d = this.publicKey.asymmetricKeyDetails;
    return this.publicKey.asymmetricKeyType === "ec" && d.namedCurve === "prime256v1";
  }
}

/** RFC 5280 section 7.1 name comparison, approximated: attribute values compared after
 * RFC 4518-style preparation (Unicode whatever the string type, NFKC, case folded,
 * white space runs collapsed and trimmed); RDNs in order, the AVAs of an RDN as a set. */
function prep(value) {
  return value
    .normalize("NFKC")
    .toUpperCase()
    .toLowerCase()
    .replace(/[\u00ad\u200b-\u200d\u2060\ufeff]/gu, "")
    .replace(/\s+/gu, " ")
    .trim();
}

function nameKey(name) {
  return JSON.stringify(
    name.toJSON().map((rdn) =>
      Object.entries(rdn)
        .flatMap(([type, values]) => values.map((v) => `${type}=${prep(v)}`))
        .sort(),
    ),
  );
}

function derLength(buf, pos) {
  let len = buf[pos];
  let p = pos + 1;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++];
  }
  return { len, p };
}

function decodeOidSequence(buf) {
  if (buf[0] !== 0x30) throw new Error("EKU is not a SEQUENCE");
  const { len, p } = derLength(buf, 1);
  const out = [];
  let q = p;
  while (q < p + len) {
    if (buf[q] !== 0x06) throw new Error("EKU item is not an OID");
    const { len: l, p: s } = derLength(buf, q + 1);
    out.push(oidToString(buf.subarray(s, s + l)));
    q = s + l;
  }
  return out;
}

function oidToString(b) {
  const arcs = [];
  let v = 0n;
  for (const byte of b) {
    v = (v << 7n) | BigInt(byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs[0] < 80n ? arcs[0] / 40n : 2n;
  return [first, arcs[0] - first * 40n, ...arcs.slice(1)].join(".");
}

/** Read PEM (one or more certificates) or DER files. */
export function loadCerts(paths) {
  const out = [];
  for (const p of paths) {
    const data = fs.readFileSync(p);
    const text = data.toString("latin1");
    if (text.includes("-----BEGIN CERTIFICATE-----")) {
      for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
        out.push(new Cert(Buffer.from(m[1].replace(/\s+/g, ""), "base64")));
      }
    } else {
      out.push(new Cert(data));
    }
  }
  return out;
}

/** All paths [C0, C1, ..., Cn, anchor]: names chain and every signature verifies. */
function buildPaths(leaf, cas, anchors) {
  const paths = [];
  const walk = (path) => {
    const last = path[path.length - 1];
    if (path.length > 10) return;
    for (const a of anchors) {
      if (last.issuerKey === a.subjectKey && last.signedBy(a)) paths.push([...path, a]);
    }
    for (const c of cas) {
      if (path.some((p) => p.der.equals(c.der))) continue;
      if (anchors.some((a) => a.der.equals(c.der))) continue;
      if (last.issuerKey === c.subjectKey && last.signedBy(c)) walk([...path, c]);
    }
  };
  walk([leaf]);
  return paths;
}

function policyProblem(cert, issuer) {
  if (!ALLOWED_SIG.has(cert.sigOid)) return `signature algorithm ${cert.sigOid} is not allowed`;
  if (cert.sigOid === "1.2.840.113549.1.1.10") {
    const h = cert.sigAlg?.hash?.name;
    if (!["SHA-256", "SHA-384", "SHA-512"].includes(h)) return "RSASSA-PSS with a weak hash";
  }
  const k = issuer.publicKey;
  const d = k.asymmetricKeyDetails;
  if (k.asymmetricKeyType === "rsa" || k.asymmetricKeyType === "rsa-pss") {
    if (d.modulusLength < 2048) return `an RSA-${d.modulusLength} key signed "${cert.name}"`;
  } else if (k.asymmetricKeyType === "ec") {
    if (!["prime256v1", "secp384r1", "secp521r1"].includes(d.namedCurve)) {
      return `EC curve ${d.namedCurve} is not allowed`;
    }
  } else {
    return `key type ${k.asymmetricKeyType} is not allowed`;
  }
  return null;
}

function checkPath(path, at) {
  const certs = path.slice(0, -1); // C0..Cn, the anchor is configuration
  for (let i = 0; i < certs.length; i++) {
    const p = policyProblem(certs[i], path[i + 1]);
    if (p) throw new PathError("CRYPTO_CONSTRAINTS_FAILURE", p);
  }
  for (const c of certs) {
    if (at < c.notBefore || at > c.notAfter) {
      throw new PathError(
        "OUT_OF_BOUNDS_NO_POE",
        `"${c.name}" is valid ${c.x.notBefore.toISOString()} .. ${c.x.notAfter.toISOString()}, not at ${new Date(at).toISOString()}`,
      );
    }
  }
  for (let i = 1; i < certs.length; i++) {
    const c = certs[i];
    const bc = c.ext("2.5.29.19");
    if (!bc || !bc.ca) throw new PathError("CHAIN_CONSTRAINTS_FAILURE", `"${c.name}" is not a CA`);
    const ku = c.keyUsage();
    if (ku !== null && !(ku & KU_KEY_CERT_SIGN)) {
      throw new PathError("CHAIN_CONSTRAINTS_FAILURE", `"${c.name}" lacks keyCertSign`);
    }
    if (bc.pathLength !== undefined && bc.pathLength !== null) {
      // non-self-issued intermediate CAs below this one (C1..C(i-1))
      const below = certs.slice(1, i).filter((x) => !x.selfIssued).length;
      if (below > bc.pathLength) {
        throw new PathError("CHAIN_CONSTRAINTS_FAILURE", `"${c.name}" pathLenConstraint ${bc.pathLength} exceeded`);
      }
    }
  }
  for (const c of certs) {
    for (const e of c.x.extensions) {
      if (e.critical && !RECOGNISED.has(e.type)) {
        throw new PathError("CHAIN_CONSTRAINTS_FAILURE", `"${c.name}" has an unknown critical extension ${e.type}`);
      }
    }
  }
}

/** Leaf profile: digitalSignature and the given EKU; anyExtendedKeyUsage (2.5.29.37.0)
 * is just another OID here, so it does not count. */
function checkLeafProfile(leaf, eku) {
  const ku = leaf.keyUsage();
  if (ku === null || !(ku & KU_DIGITAL_SIGNATURE)) {
    throw new PathError("CHAIN_CONSTRAINTS_FAILURE", "the certificate's key usage lacks digitalSignature");
  }
  const ekus = leaf.ekus();
  if (ekus === null || !ekus.includes(eku)) {
    throw new PathError("CHAIN_CONSTRAINTS_FAILURE", `the certificate's extended key usage lacks ${eku}`);
  }
}

/**
 * Validate `leaf` at instant `at` (ms) against `anchors` through `cas`.
 * Returns the path or throws PathError with the sub-indication.
 */
export function validate(leaf, cas, anchors, at, eku) {
  const paths = buildPaths(leaf, cas, anchors);
  if (paths.length === 0) {
    throw new PathError("NO_CERTIFICATE_CHAIN_FOUND", `no path from "${leaf.name}" to a trust anchor`);
  }
  let first = null;
  for (const path of paths) {
    try {
      checkPath(path, at);
      checkLeafProfile(leaf, eku);
      return path;
    } catch (e) {
      if (!(e instanceof PathError)) throw e;
      first ??= e;
    }
  }
  throw first;
}

/** Issuer binding (section 4.2): the agency code of a seal certificate, or throws. */
export function agencyOf(cert) {
  const ids = cert.orgIds();
  const none = () => new PathError("CHAIN_CONSTRAINTS_FAILURE", "the seal certificate names no agency");
  if (ids.length !== 1 || !ids[0].startsWith("GV:MN-")) throw none();
  const code = ids[0].slice(6);
  const n = Buffer.byteLength(code, "utf8");
  if (n < 1 || n > 32) throw none();
  return code;
}
