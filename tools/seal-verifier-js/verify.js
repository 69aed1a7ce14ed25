#!/usr/bin/env node
// Independent QR seal verifier (docs/qr-seal.md, docs/trust-list.md).
//
//   node verify.js VECTOR.json [VECTOR.json ...] [--json]   run conformance vectors
//   node verify.js --vectors DIR [--json]                    run every NN-*.json in DIR
//   node verify.js --seal TEXT --trust ROOT.pem [--intermediate CA.pem ...]
//                  [--seal-cert SEAL.pem ...] [--trust-list LIST.cbor] [--at 2026-12-01T04:00:00Z]
//
// Vector mode exits 1 when any verdict (or decoded claim set) differs from the
// vector's expectation. Seal mode exits 0 TOTAL-PASSED, 1 TOTAL-FAILED, 2 INDETERMINATE.
import fs from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { loadCerts } from "./lib/pki.js";
import { verifySeal } from "./lib/verify.js";

const USAGE = "usage: verify.js VECTOR.json... | --vectors DIR | --seal TEXT --trust ROOT.pem [...]";

function parseTime(s) {
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s)) throw new Error(`not an RFC 3339 time: ${s}`);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`not an RFC 3339 time: ${s}`);
  return t;
}

export function runVector(file) {
  const v = JSON.parse(fs.readFileSync(file, "utf8"));
  const dir = path.dirname(file);
  const rel = (ps) => ps.map((p) => path.resolve(dir, p));
  const got = verifySeal(v.input, {
    anchors: loadCerts(rel(v.trust_anchors)),
    intermediates: loadCerts(rel(v.intermediates)),
    sealCerts: loadCerts(rel(v.seal_certificates)),
    trustList: v.trust_list ? fs.readFileSync(path.resolve(dir, v.trust_list)) : null,
    at: parseTime(v.validation_time),
  });
  const verdictOk =
    got.indication === v.expected.indication && got.subindication === (v.expected.subindication ?? null);
  const claimsOk = v.claims === null || isDeepStrictEqual(got.claims, v.claims);
  return {
    name: v.name,
    expected: { indication: v.expected.indication, subindication: v.expected.subindication ?? null },
    got: { indication: got.indication, subindication: got.subindication },
    reason: got.reason,
    claims_match: claimsOk,
    pass: verdictOk && claimsOk,
  };
}

function vectorFiles(dir) {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d+-.*\.json$/.test(f))
    .sort((a, b) => parseInt(a, 10) - parseInt(b, 10))
    .map((f) => path.join(dir, f));
}

const fmt = (x) => (x.subindication ? `${x.indication}/${x.subindication}` : x.indication);

function main(argv) {
  const args = { files: [], intermediates: [], sealCerts: [], trust: [], json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--json") args.json = true;
    else if (a === "--vectors") args.files.push(...vectorFiles(val()));
    else if (a === "--seal") args.seal = val();
    else if (a === "--trust") args.trust.push(val());
    else if (a === "--intermediate") args.intermediates.push(val());
    else if (a === "--seal-cert") args.sealCerts.push(val());
    else if (a === "--trust-list") args.trustList = val();
    else if (a === "--at") args.at = val();
    else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      return 0;
    } else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
    else args.files.push(a);
  }
  if (args.seal !== undefined) {
    if (args.trust.length === 0) throw new Error("--trust ROOT.pem is required");
    const r = verifySeal(args.seal, {
      anchors: loadCerts(args.trust),
      intermediates: loadCerts(args.intermediates),
      sealCerts: loadCerts(args.sealCerts),
      trustList: args.trustList ? fs.readFileSync(args.trustList) : null,
      at: args.at ? parseTime(args.at) : Date.now(),
    });
    if (args.json) console.log(JSON.stringify(r, null, 2));
    else console.log(`${fmt(r)}: ${r.reason}`);
    return { "TOTAL-PASSED": 0, "TOTAL-FAILED": 1 }[r.indication] ?? 2;
  }
  if (args.files.length === 0) throw new Error(USAGE);
  const results = args.files.map(runVector);
  if (args.json) console.log(JSON.stringify(results, null, 2));
  else {
    for (const r of results) {
      const mark = r.pass ? "ok  " : "FAIL";
      const extra = r.pass ? "" : `  (expected ${fmt(r.expected)}${r.claims_match ? "" : "; claims differ"}: ${r.reason})`;
      console.log(`${mark} ${r.name}: ${fmt(r.got)}${extra}`);
    }
    const bad = results.filter((r) => !r.pass).length;
    console.log(`${results.length - bad} passed, ${bad} failed`);
  }
  return results.every((r) => r.pass) ? 0 : 1;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  console.error(`verify.js: ${e.message}`);
  process.exitCode = 3;
}
