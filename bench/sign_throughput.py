"""B-B signing throughput of a 1-page certificate, one process, RSA-3072 and P-256.

Prints docs/s for esign's DocumentSigner and for pyHanko used naively (SimpleSigner re-parsing
the key, dry-run size estimate per document), beside the raw signature ops/s of the same key on
this machine and the ratios. Figures only; this never fails a build.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, SignOptions

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "certificate.pdf"


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def raw_ops(pki: testpki.TestPki, arch: str, seconds: float) -> float:
    key = serialization.load_pem_private_key(pki.key(arch, "seal").read_bytes(), None)
    data = b"x" * 32
    if isinstance(key, rsa.RSAPrivateKey):
        k = key
        return rate(lambda: k.sign(data, padding.PKCS1v15(), hashes.SHA256()), seconds)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    e = key
    return rate(lambda: e.sign(data, ec.ECDSA(hashes.SHA256())), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    pki = testpki.build()
    data = SAMPLE.read_bytes()
    print(f"B-B signing of {SAMPLE.name} ({len(data)} bytes), one process, {args.seconds:.0f} s")
    print(f"{'key':<10} {'raw ops/s':>10} {'esign docs/s':>13} {'naive docs/s':>13} "
          f"{'esign/raw':>10} {'esign/naive':>12}")  # fmt: skip
    for arch, name in (("mn-rsa", "RSA-3072"), ("mn-ec", "P-256")):
        raw = raw_ops(pki, arch, args.seconds)
        key = load_key(str(pki.p12(arch, "seal")), password=testpki.P12_PASSWORD.encode())
        signer = DocumentSigner(key, SignOptions())
        ours = rate(lambda s=signer: s.sign_bytes(data), args.seconds)

        def naive(a: str = arch) -> bytes:
            simple = signers.SimpleSigner.load_pkcs12(
                str(pki.p12(a, "seal")), passphrase=testpki.P12_PASSWORD.encode()
            )
            assert simple is not None
            meta = signers.PdfSignatureMetadata(
                field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES
            )
            out = BytesIO()
            writer = IncrementalPdfFileWriter(BytesIO(data))
            signers.PdfSigner(meta, simple).sign_pdf(writer, output=out)
            return out.getvalue()

        theirs = rate(naive, args.seconds)
        print(f"{name:<10} {raw:>10.0f} {ours:>13.1f} {theirs:>13.1f} "
              f"{ours / raw:>10.3f} {ours / theirs:>12.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
