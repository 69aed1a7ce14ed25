#!/usr/bin/env node
// Cases beyond the conformance vectors, for comparing this verifier with another one
// (tests/verify/test_seal_vectors_node.py runs the reference CLI on them as a black box).
// Made with the vector PKI's committed test keys: correctly signed claim sets that probe the
// claim and CBOR profile, correctly signed trust lists that probe trust-list.md, and seal
// certificates that probe path validation (name matching, critical extensions, folders).
//
//   node differential.mjs OUTDIR      writes OUTDIR/cases.json and the files it names
import "reflect-metadata";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as x509 from "@peculiar/x509";
import { Tag, encode } from "cbor2";
import { decodeStrict } from "./lib/cbor.js";
import { loadCerts } from "./lib/pki.js";
import { sigStructure } from "./lib/seal.js";
import { base32Encode } from "./lib/url.js";
import { verifySeal } from "./lib/verify.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const V = path.resolve(here, "../../samples/seal-vectors");
const pki = (f) => path.join(V, "pki", f);
const out = path.resolve(process.argv[2] ?? "differential-out");
fs.mkdirSync(out, { recursive: true });
const subtle = crypto.webcrypto.subtle;
x509.cryptoProvider.set(crypto.webcrypto);

// --- CBOR by hand, so that each case has exactly the bytes it is about
const head = (mt, n) => {
  n = BigInt(n);
  if (n < 24n) return Buffer.from([(mt << 5) | Number(n)]);
  const [ai, len] = n < 0x100n ? [24, 1] : n < 0x10000n ? [25, 2] : n < 0x100000000n ? [26, 4] : [27, 8];
  const b = Buffer.alloc(1 + len);
  b[0] = (mt << 5) | ai;
  for (let i = 0; i < len; i++) b[len - i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return b;
};
const u = (n) => head(0, n);
const neg = (n) => head(1, n); // -1 - n
const t = (s) => Buffer.concat([head(3, Buffer.byteLength(s)), Buffer.from(s, "utf8")]);
const bs = (b) => Buffer.concat([head(2, b.length), b]);
const map = (...kv) => Buffer.concat([head(5, kv.length / 2), ...kv]);
const raw = (h) => Buffer.from(h, "hex");

const sealKey = crypto.createPrivateKey(fs.readFileSync(pki("seal.key.pem")));
function sealUrl(payload, kid) {
  const prot = Buffer.concat([raw("a201260448"), kid]);
  const sig = crypto.sign("sha256", sigStructure(prot, payload), { key: sealKey, dsaEncoding: "ieee-p1363" });
  return `HTTPS://VERIFY.E-MONGOLIA.MN/V/${base32Encode(Buffer.concat([raw("d284"), bs(prot), raw("a0"), bs(payload), bs(sig)]))}`;
}

const cases = [];
const add = (c) => cases.push({ at: "2026-12-01T04:00:00Z", trust_anchors: [pki("root.pem")], intermediates: [pki("intermediate.pem")], seal_certificates: [pki("seal.pem")], trust_list: null, ...c });

// --- 1. claim sets, signed by the UBEG seal key
const sealKid = loadCerts([pki("seal.pem")])[0].kid;
const base = { 1: u(1), 2: t("UBEG"), 3: t("residence"), 4: t("ОСХ-2026-000123"), 5: u(20782), 6: u(20872), 7: t("Батбаярын Энх-Амгалан"), 8: t("УБ99112233"), 9: bs(Buffer.alloc(16, 0x46)) };
function claims(over = {}, extra = []) {
  const m = { ...base, ...over };
  const kv = Object.keys(m).map(Number).sort((a, b) => a - b).filter((k) => m[k] !== null).flatMap((k) => [u(k), m[k]]);
  return map(...kv, ...extra);
}
const claimCases = {
  "ext-map-text-keys": claims({}, [u(24), map(t("a"), u(1))]),
  "ext-map-unsorted": claims({}, [u(24), map(u(2), u(0), u(1), u(0))]),
  "ext-map-text-keys-length-first": claims({}, [u(24), map(t("bb"), u(1), t("a"), u(1))]),
  "ext-uint64-max": claims({}, [u(24), u(2n ** 64n - 1n)]),
  "ext-nint64-min": claims({}, [u(24), neg(2n ** 64n - 1n)]),
  "ext-key-uint64-max": claims({}, [u(2n ** 64n - 1n), u(0)]),
  "ext-text-with-lf": claims({}, [u(24), t("a\nb")]),
  "ext-map-depth-4": claims({}, [u(24), map(u(1), map(u(2), map()))]),
  "ext-map-depth-5": claims({}, [u(24), map(u(1), map(u(2), map(u(3), map())))]),
  "ext-empty-bytes": claims({}, [u(24), bs(Buffer.alloc(0))]),
  "ext-20-claims": claims({}, Array.from({ length: 20 }, (_, i) => [u(24 + i), u(i)]).flat()),
  "ext-tag-inside": claims({}, [u(24), raw("c100")]),
  "negative-key-last": claims({}, [neg(0), u(0)]),
  "issued-day-0-no-expiry": claims({ 5: u(0), 6: null }),
  "expires-9999-12-31": claims({ 6: u(2932896) }),
  "expires-after-9999-12-31": claims({ 6: u(2932897) }),
  "version-non-minimal": claims({ 1: raw("1801") }),
  "digest-17-bytes": claims({ 9: bs(Buffer.alloc(17)) }),
  "issuer-soft-hyphen": claims({ 2: t("UB\u00adEG") }),
  "issuer-lower-case": claims({ 2: t("ubeg") }),
  "doc-type-32-bytes": claims({ 3: t("r".repeat(32)) }),
  "doc-type-33-bytes": claims({ 3: t("r".repeat(33)) }),
  "subject-id-empty": claims({ 8: t("") }),
  "number-bom-first": claims({ 4: t("\ufeffОСХ-1") }),
  "number-noncharacter": claims({ 4: t("ОСХ-\uffff") }),
  "number-private-use": claims({ 4: t("ОСХ-\ue000") }),
  "name-mongolian-vowel-separator": claims({ 7: t("Бат\u180eбаяр") }),
  "name-ideographic-space-inside": claims({ 7: t("Бат\u3000баяр") }),
  "name-ends-line-separator": claims({ 7: t("Батбаяр\u2028") }),
  "name-nel": claims({ 7: t("Бат\u0085баяр") }),
  "name-nbsp-inside": claims({ 7: t("Бат\u00a0баяр") }),
  "name-ogham-space-last": claims({ 7: t("Батбаяр\u1680") }),
  "name-zero-width-space-last": claims({ 7: t("Батбаяр\u200b") }),
  "name-zero-width-joiner": claims({ 7: t("Бат\u200dбаяр") }),
  "name-combining-mark-first": claims({ 7: t("\u0306Бат") }),
  "name-hangul-jamo": claims({ 7: t("\u1100\u1161") }),
  "name-angstrom-sign": claims({ 7: t("\u212b") }),
  "name-cjk-compatibility": claims({ 7: t("\uf900") }),
  "name-emoji": claims({ 7: t("Бат😀") }),
  "name-tag-character": claims({ 7: t("Бат\u{e0041}") }),
  "name-variation-selector": claims({ 7: t("Бат\ufe0f") }),
  "name-tab": claims({ 7: t("Бат\tбаяр") }),
  "name-delete": claims({ 7: t("Бат\u007fбаяр") }),
};
for (const [name, payload] of Object.entries(claimCases)) add({ name: `claims/${name}`, input: sealUrl(payload, sealKid) });

// --- 2. trust lists, signed by the vector trust-list key
const listKey = crypto.createPrivateKey(fs.readFileSync(pki("trust-list-signer.key.pem")));
const valid = JSON.parse(fs.readFileSync(path.join(V, "116-list-valid.json"), "utf8"));
const [prot0, unprot0, payload0] = decodeStrict(fs.readFileSync(path.join(V, valid.trust_list)), { leadingTag18: true });
const body0 = decodeStrict(payload0, { deterministic: true });
const plain = (v) => (v instanceof Map ? new Map([...v].map(([k, x]) => [k, plain(x)])) : Array.isArray(v) ? v.map(plain) : v instanceof Uint8Array ? new Uint8Array(v) : v);
function list(mutBody = (b) => b, mutUnprot = (x) => x) {
  const payload = Buffer.from(encode(mutBody(plain(body0)), { cde: true }));
  const sig = crypto.sign("sha256", sigStructure(Buffer.from(prot0), payload), { key: listKey, dsaEncoding: "ieee-p1363" });
  return Buffer.from(encode(new Tag(18, plain([prot0, mutUnprot(plain(unprot0)), payload, sig])), { cde: true }));
}
const atS = Date.parse(valid.validation_time) / 1000;
const entry = (b) => b.get(4)[0];
const rootDer = new Uint8Array(loadCerts([pki("root.pem")])[0].der);
const listCases = {
  "rebuilt": list(),
  "seal-keys-reversed": list((b) => (b.get(4).reverse(), b)),
  "root-in-x5chain": list(undefined, (x) => (x.set(33, [...x.get(33), rootDer]), x)),
  "x5chain-signer-alone": list(undefined, (x) => (x.set(33, x.get(33)[0]), x)),
  "withdrawn-empty-array": list((b) => (b.get(6).set("UBEG", []), b)),
  "withdrawn-hash-15-bytes": list((b) => (b.get(6).set("UBEG", [new Uint8Array(15)]), b)),
  "withdrawn-hash-32-bytes": list((b) => (b.get(6).set("UBEG", [new Uint8Array(32)]), b)),
  "withdrawn-empty-agency": list((b) => (b.get(6).set("", [new Uint8Array(16)]), b)),
  "seal-until-after-9999": list((b) => (b.get(4).forEach((e) => e.set(5, 2932897)), b)),
  "seal-until-before-from": list((b) => (entry(b).set(5, entry(b).get(4) - 1), b)),
  "entry-key-7": list((b) => (b.get(4).forEach((e) => e.set(7, 0)), b)),
  "intermediates-empty": list((b) => (b.set(5, []), b)),
  "issued-at-plus-300s": list((b) => (b.set(2, atS + 300), b)),
  "issued-at-plus-301s": list((b) => (b.set(2, atS + 301), b)),
  "next-update-equals-issued": list((b) => (b.set(3, b.get(2)), b)),
  "version-2": list((b) => (b.set(1, 2), b)),
  "kid-not-of-certificate": list((b) => (entry(b).set(1, new Uint8Array(8)), b)),
  "kid-twice": list((b) => (b.get(4).push(plain(entry(b))), b)),
  "agency-33-bytes": list((b) => (b.get(4).forEach((e) => e.set(2, "U".repeat(33))), b)),
  "next-update-2^40": list((b) => (b.set(3, 2 ** 40), b)),
  "intermediate-not-a-certificate": list((b) => (b.set(5, [new Uint8Array([0])]), b)),
};
for (const [name, bytes] of Object.entries(listCases)) {
  const file = path.join(out, `list-${name}.cbor`);
  fs.writeFileSync(file, bytes);
  add({ name: `trust-list/${name}`, input: valid.input, at: valid.validation_time, intermediates: [], seal_certificates: [], trust_list: file });
}

// withdrawn documents whose seal is also expired or not yet valid: REVOKED all the same
const withdrawnVector = JSON.parse(fs.readFileSync(path.join(V, "125-list-document-withdrawn.json"), "utf8"));
for (const [name, over] of [["withdrawn-and-expired", { 5: u(20780), 6: u(20781) }], ["withdrawn-and-not-yet-valid", { 5: u(20790), 6: null }], ["not-withdrawn-expired", { 4: t("ОСХ-2026-000124"), 5: u(20780), 6: u(20781) }]]) {
  add({ name: `trust-list/${name}`, input: sealUrl(claims(over), sealKid), at: withdrawnVector.validation_time, intermediates: [], seal_certificates: [], trust_list: path.join(V, withdrawnVector.trust_list) });
}

// --- 3. seal certificates issued with the vector CA keys
const importKey = (f) => subtle.importKey("pkcs8", crypto.createPrivateKey(fs.readFileSync(pki(f))).export({ type: "pkcs8", format: "der" }), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
const interKey = await importKey("intermediate.key.pem");
const sealPub = await subtle.importKey("spki", crypto.createPublicKey(sealKey).export({ type: "spki", format: "der" }), { name: "ECDSA", namedCurve: "P-256" }, true, ["verify"]);
const inter = new x509.X509Certificate(fs.readFileSync(pki("intermediate.pem")));
const tlv = (tag, body) => Buffer.concat([Buffer.from([tag]), body.length < 128 ? Buffer.from([body.length]) : Buffer.from([0x81, body.length]), body]);
function oid(dotted) {
  const arcs = dotted.split(".").map(BigInt);
  const parts = [arcs[0] * 40n + arcs[1], ...arcs.slice(2)].map((a) => {
    const bytes = [Number(a & 0x7fn)];
    for (a >>= 7n; a > 0n; a >>= 7n) bytes.unshift(Number(a & 0x7fn) | 0x80);
    return Buffer.from(bytes);
  });
  return tlv(0x06, Buffer.concat(parts));
}
const SEAL_EKU = new x509.Extension("2.5.29.37", false, tlv(0x30, oid("2.25.187697793891391668806884730963693754825")));
const uri = (s) => tlv(0x86, Buffer.from(s));
const SUBJECT = [{ "2.5.4.6": ["MN"] }, { "2.5.4.10": ["Улсын бүртгэлийн ерөнхий газар (Test Vector)"] }, { "2.5.4.97": ["GV:MN-UBEG"] }, { "2.5.4.3": ["Crafted seal"] }];
let serial = 0x5e00;
async function sealCert(name, { issuer = inter.subjectName, subject = SUBJECT, extra = [] } = {}) {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16),
    subject: subject,
    issuer: issuer,
    notBefore: new Date("2025-01-01T00:00:00Z"),
    notAfter: new Date("2045-01-01T00:00:00Z"),
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    publicKey: sealPub,
    signingKey: interKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation, true),
      SEAL_EKU,
      ...extra,
    ],
  });
  const file = path.join(out, `cert-${name}.pem`);
  fs.writeFileSync(file, cert.toString("pem"));
  return file;
}
const interSubject = Buffer.from(inter.subjectName.toArrayBuffer());
const patched = (from, to) => {
  const b = Buffer.from(interSubject);
  const i = b.indexOf(from);
  if (i < 0) throw new Error("name patch failed");
  to.copy(b, i);
  return new x509.Name(b);
};
const certCases = {
  control: await sealCert("control"),
  "issuer-name-printable-string": await sealCert("printable", { issuer: patched(Buffer.concat([raw("0c16"), Buffer.from("Test Vector Issuing CA")]), Buffer.concat([raw("1316"), Buffer.from("Test Vector Issuing CA")])) }),
  "issuer-name-upper-case": await sealCert("upper", { issuer: patched(Buffer.from("Test Vector Issuing CA"), Buffer.from("TEST VECTOR ISSUING CA")) }),
  "critical-issuer-alt-name": await sealCert("ian", { extra: [new x509.Extension("2.5.29.18", true, tlv(0x30, uri("https://ca.example")))] }),
  "critical-subject-info-access": await sealCert("sia", { extra: [new x509.Extension("1.3.6.1.5.5.7.1.11", true, tlv(0x30, tlv(0x30, Buffer.concat([oid("1.3.6.1.5.5.7.48.5"), uri("https://ca.example/r")]))))] }),
  "critical-subject-alt-name": await sealCert("san", { extra: [new x509.Extension("2.5.29.17", true, tlv(0x30, uri("https://ubeg.example")))] }),
  "two-organization-identifiers": await sealCert("two-orgid", { subject: [...SUBJECT.slice(0, 3), { "2.5.4.97": ["GV:MN-UBEG"] }, SUBJECT[3]] }),
  "organization-identifier-lower-case-prefix": await sealCert("gv-lower", { subject: [SUBJECT[0], SUBJECT[1], { "2.5.4.97": ["gv:mn-UBEG"] }, SUBJECT[3]] }),
};
const v01 = JSON.parse(fs.readFileSync(path.join(V, "01-valid.json"), "utf8"));
const payload01 = raw(v01.payload_hex);
for (const [name, file] of Object.entries(certCases)) {
  add({ name: `certificate/${name}`, input: sealUrl(payload01, loadCerts([file])[0].kid), seal_certificates: [file] });
}
// every certificate in the seal folder, none as an intermediate (qr-seal.md section 4.5 (b))
const vec = (n) => JSON.parse(fs.readFileSync(path.join(V, fs.readdirSync(V).find((f) => f.endsWith(".json") && parseInt(f, 10) === n)), "utf8"));
for (const n of [1, 110, 111, 112, 133]) {
  const v = vec(n);
  add({ name: `folder/${v.name}`, input: v.input, at: v.validation_time, intermediates: [], seal_certificates: [...v.seal_certificates, ...v.intermediates].map((p) => path.join(V, p)) });
}

for (const c of cases) {
  const r = verifySeal(c.input, {
    anchors: loadCerts(c.trust_anchors),
    intermediates: loadCerts(c.intermediates),
    sealCerts: loadCerts(c.seal_certificates),
    trustList: c.trust_list ? fs.readFileSync(c.trust_list) : null,
    at: Date.parse(c.at),
  });
  c.node = { indication: r.indication, subindication: r.subindication, reason: r.reason };
}
fs.writeFileSync(path.join(out, "cases.json"), JSON.stringify(cases, null, 1));
console.log(`${cases.length} cases written to ${path.join(out, "cases.json")}`);
