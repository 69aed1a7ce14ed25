// Sign a PDF with node-signpdf (@signpdf/signpdf + signer-p12 + placeholder-plain), as a node
// application would: node signpdf_sign.js IN OUT P12 PASSWORD
'use strict';
const fs = require('fs');
const path = require('path');
const modules = path.resolve(__dirname, '..', '..', 'tools', 'node_modules');
const { SignPdf } = require(path.join(modules, '@signpdf', 'signpdf'));
const { P12Signer } = require(path.join(modules, '@signpdf', 'signer-p12'));
const { plainAddPlaceholder } = require(path.join(modules, '@signpdf', 'placeholder-plain'));

async function main() {
  const [input, output, p12, passphrase] = process.argv.slice(2);
  const withPlaceholder = plainAddPlaceholder({
    pdfBuffer: fs.readFileSync(input),
    reason: 'interop test',
    contactInfo: 'esign tests',
    name: 'node-signpdf',
    location: 'Ulaanbaatar',
  });
  const signer = new P12Signer(fs.readFileSync(p12), { passphrase });
  const signed = await new SignPdf().sign(withPlaceholder, signer);
  fs.writeFileSync(output, signed);
}

main().catch((err) => {
  console.error(err && err.message ? err.message : err);
  process.exit(1);
});
