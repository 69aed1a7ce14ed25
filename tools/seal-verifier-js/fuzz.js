#!/usr/bin/env node
// Mutation fuzzing of the decoder and verifier. --mode cose (default): bit flips,
// truncations, insertions and byte replacements of a vector's COSE_Sign1, re-encoded as
// base32 URLs; --mode text: the same on the URL text (any character, case, white space);
// --mode list: on the bytes of the signed trust list (the vector must use one). Checks
// that verification never throws and never passes an altered seal or list, and (with
// --out) writes the cases with this verifier's verdicts for a differential run against
// another verifier.
//
//   node fuzz.js [--mode cose|text|list] [--count 2000] [--seed 1] [--out cases.json] [VECTOR.json]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadCerts } from "./lib/pki.js";
import { base32Encode } from "./lib/url.js";
import { verifySeal } from "./lib/verify.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : dflt;
};
const count = Number(opt("--count", "2000"));
let seed = Number(opt("--seed", "1"));
const out = opt("--out", null);
const mode = opt("--mode", "cose");
const vectorFile = args[0] ?? path.join(here, "../../samples/seal-vectors/01-valid.json");
const v = JSON.parse(fs.readFileSync(vectorFile, "utf8"));
const dir = path.dirname(vectorFile);
const rel = (ps) => ps.map((p) => path.resolve(dir, p));
const opts = {
  anchors: loadCerts(rel(v.trust_anchors)),
  intermediates: loadCerts(rel(v.intermediates)),
  sealCerts: loadCerts(rel(v.seal_certificates)),
  trustList: v.trust_list ? fs.readFileSync(path.resolve(dir, v.trust_list)) : null,
  at: Date.parse(v.validation_time),
};
const rnd = (n) => {
  seed = (seed * 1103515245 + 12345) % 2147483648; // deterministic LCG
  return seed % n;
};
const orig = mode === "list" ? opts.trustList : Buffer.from(v.cose_sign1_hex, "hex");
if (!orig) throw new Error("--mode list needs a vector with a trust list");
const TEXT_CHARS = ["/", "V", "v", "?", "#", ":", " ", "\t", "\n", "\u001c", "\u00a0", "\u017f", "=", "0", "1", "a", "z", "%", "\u0000"];
function mutateText() {
  const t = v.input;
  const i = rnd(t.length + 1);
  switch (rnd(4)) {
    case 0:
      return t.slice(0, i) + TEXT_CHARS[rnd(TEXT_CHARS.length)] + t.slice(i);
    case 1:
      return t.slice(0, i) + t.slice(i + 1 + rnd(3));
    case 2:
      return t.slice(0, i) + t.slice(i, i + 1).toLowerCase() + t.slice(i + 1);
    default:
      return t.slice(0, i);
  }
}
function mutate() {
  const b = Buffer.from(orig);
  switch (rnd(5)) {
    case 0: {
      const i = rnd(b.length);
      b[i] ^= 1 << rnd(8);
      return b;
    }
    case 1:
      return b.subarray(0, rnd(b.length));
    case 2: {
      const i = rnd(b.length + 1);
      return Buffer.concat([b.subarray(0, i), Buffer.from([rnd(256)]), b.subarray(i)]);
    }
    case 3: {
      b[rnd(b.length)] = [0x00, 0x18, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xc0, 0xd2, 0xf5, 0xf6, 0xf9, 0xff][rnd(13)];
      return b;
    }
    default: {
      const i = rnd(b.length);
      return Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + rnd(4))]);
    }
  }
}
const cases = [];
const tally = {};
let bad = 0;
for (let n = 0; n < count; n++) {
  let bytes = mode === "text" ? null : mutate();
  let input = v.input;
  if (mode === "text") input = mutateText();
  else if (mode === "cose") input = `HTTPS://VERIFY.E-MONGOLIA.MN/V/${base32Encode(bytes)}`;
  let r;
  try {
    r = verifySeal(input, { ...opts, trustList: mode === "list" ? bytes : opts.trustList });
  } catch (e) {
    console.log(`THROWS on ${bytes ? bytes.toString("hex") : JSON.stringify(input)}: ${e.stack}`);
    bad++;
    continue;
  }
  const verdict = r.subindication ? `${r.indication}/${r.subindication}` : r.indication;
  if (mode === "text") bytes = null;
  else if (r.indication === "TOTAL-PASSED" && !bytes.equals(orig)) {
    console.log(`ALTERED ${mode === "list" ? "LIST" : "SEAL"} PASSES: ${bytes.toString("hex")}`);
    bad++;
  }
  tally[verdict] = (tally[verdict] ?? 0) + 1;
  cases.push({ input, ...(mode === "list" ? { list_hex: bytes.toString("hex") } : {}), verdict, reason: r.reason });
}
console.log(JSON.stringify(tally));
if (out) fs.writeFileSync(out, JSON.stringify({ vector: vectorFile, validation_time: v.validation_time, cases }, null, 1));
console.log(`${count - bad} passed, ${bad} failed`);
process.exitCode = bad ? 1 : 0;
