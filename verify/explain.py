"""Plain-language explanations of ETSI sub-indications, Mongolian first, English second."""

from __future__ import annotations

from .report import Indication, Text

_TEXTS: dict[str, Text] = {
    "OK": Text(
        "Гарын үсэг хүчинтэй: баримт гарын үсэг зурснаас хойш өөрчлөгдөөгүй, гарын үсэг зурагч "
        "төрийн итгэмжлэгдсэн гэрчилгээтэй.",
        "The signature is valid: the document is unchanged since signing and the signer's "
        "certificate chains to a state trust anchor.",
    ),
    "HASH_FAILURE": Text(
        "Баримт гарын үсэг зурсны дараа өөрчлөгдсөн (хэш таарахгүй байна).",
        "The document was altered after signing: its digest does not match the signed one.",
    ),
    "SIG_CRYPTO_FAILURE": Text(
        "Гарын үсгийн утга гэрчилгээний түлхүүрээр баталгаажихгүй байна.",
        "The signature value does not verify with the signer's public key.",
    ),
    "FORMAT_FAILURE": Text(
        "Гарын үсэг эсвэл PDF бүтэц алдаатай, эсвэл гарын үсэг зурсны дараа зөвшөөрөгдөөгүй "
        "өөрчлөлт орсон.",
        "The signature or PDF structure is malformed, or the file was changed after signing "
        "in a way that is not allowed.",
    ),
    "REVOKED": Text(
        "Гарын үсэг зурагчийн гэрчилгээ хүчингүй болгогдсон.",
        "The signer's certificate was revoked.",
    ),
    "REVOKED_NO_POE": Text(
        "Гэрчилгээ хүчингүй болсон бөгөөд гарын үсэг түүнээс өмнө зурагдсаныг нотлох баримт алга.",
        "The certificate was revoked and nothing proves the signature existed before that.",
    ),
    "REVOKED_CA_NO_POE": Text(
        "Гэрчилгээ олгогч байгууллагын гэрчилгээ хүчингүй болсон.",
        "A certificate authority in the chain was revoked.",
    ),
    "EXPIRED": Text(
        "Гарын үсэг зурагчийн гэрчилгээний хугацаа дууссан.",
        "The signer's certificate has expired.",
    ),
    "OUT_OF_BOUNDS_NO_POE": Text(
        "Гэрчилгээний хугацаа дууссан бөгөөд гарын үсэг хугацаа дуусахаас өмнө зурагдсаныг "
        "нотлох цагийн тэмдэг алга.",
        "The certificate has expired and no timestamp proves the signature was made before that.",
    ),
    "OUT_OF_BOUNDS_NOT_REVOKED": Text(
        "Гэрчилгээний хугацаа дууссан боловч хүчингүй болоогүй.",
        "The certificate is outside its validity period but was not revoked.",
    ),
    "NOT_YET_VALID": Text(
        "Гарын үсэг зурах үед гэрчилгээ хүчин төгөлдөр болоогүй байсан.",
        "The certificate was not yet valid when the document was signed.",
    ),
    "NO_CERTIFICATE_CHAIN_FOUND": Text(
        "Гарын үсэг зурагчийн гэрчилгээ төрийн итгэмжлэгдсэн үндсэн гэрчилгээнд "
        "холбогдохгүй байна.",
        "The signer's certificate does not chain to any configured state trust anchor.",
    ),
    "NO_SIGNING_CERTIFICATE_FOUND": Text(
        "Гарын үсэг зурагчийн гэрчилгээ олдсонгүй.",
        "The signer's certificate is missing from the signature.",
    ),
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": Text(
        "Гэрчилгээний гинжин холбоо шалгагдсангүй.",
        "The certificate chain could not be validated.",
    ),
    "CHAIN_CONSTRAINTS_FAILURE": Text(
        "Гэрчилгээний хэрэглээний хязгаарлалт зөрчигдсөн.",
        "A certificate in the chain violates its usage constraints.",
    ),
    "SIG_CONSTRAINTS_FAILURE": Text(
        "Гарын үсэг бодлогын шаардлага хангахгүй байна (жишээ нь түлхүүрийн хэрэглээ).",
        "The signature does not meet the validation policy (for example key usage).",
    ),
    "CRYPTO_CONSTRAINTS_FAILURE": Text(
        "Сул криптограф алгоритм (MD5/SHA-1 эсвэл богино түлхүүр) ашигласан.",
        "A weak algorithm was used (MD5/SHA-1, or a key that is too short).",
    ),
    "CRYPTO_CONSTRAINTS_FAILURE_NO_POE": Text(
        "Сул криптограф алгоритм ашигласан бөгөөд өмнө нь зурагдсаныг нотлох баримт алга.",
        "A weak algorithm was used and nothing proves the signature predates its deprecation.",
    ),
    "TRY_LATER": Text(
        "Хүчингүй болголтын мэдээлэл одоогоор олдсонгүй; дараа дахин шалгана уу.",
        "Revocation information is not available now; try again later.",
    ),
    "REVOCATION_OUT_OF_BOUNDS_NO_POE": Text(
        "Хүчингүй болголтын мэдээлэл хугацааны хувьд тохирохгүй байна.",
        "The revocation information does not cover the relevant time.",
    ),
    "TIMESTAMP_ORDER_FAILURE": Text(
        "Цагийн тэмдгүүдийн дараалал зөрчигдсөн.",
        "The timestamps are in an impossible order.",
    ),
    "NO_POE": Text(
        "Оршин байсныг нотлох баримт (цагийн тэмдэг) хангалтгүй.",
        "There is not enough proof of existence (timestamps).",
    ),
    "SIGNED_DATA_NOT_FOUND": Text(
        "Баримтад гарын үсэг олдсонгүй.",
        "The document carries no signature.",
    ),
    "NO_SIGNATURE": Text(
        "Баримтад гарын үсэг байхгүй: шалгах зүйл алга. Энэ нь гарын үсэгтэй баримт биш.",
        "The document carries no signature: there is nothing to validate. It is not a signed "
        "document.",
    ),
    "ONLY_TIMESTAMPS": Text(
        "Баримтад зөвхөн баримтын цагийн тэмдэг байна, гарын үсэг алга: хэн ч гарын үсэг зураагүй.",
        "The document carries only document timestamps and no signature: nobody signed it.",
    ),
    "UNSUPPORTED_ALGORITHM": Text(
        "Гарын үсэг esign-ийн дэмждэггүй алгоритм ашигласан тул баталж ч, үгүйсгэж ч чадсангүй.",
        "The signature uses an algorithm esign does not support: it can be neither confirmed "
        "nor refuted.",
    ),
    "UNSUPPORTED_FORMAT": Text(
        "Гарын үсэг esign-ийн уншдаггүй хэлбэртэй тул баталж ч, үгүйсгэж ч чадсангүй.",
        "The signature is in a format esign does not read: it can be neither confirmed nor "
        "refuted.",
    ),
    "GENERIC": Text(
        "Гарын үсгийг бүрэн шалгаж чадсангүй.",
        "The signature could not be fully validated.",
    ),
    "MODIFIED_AFTER_SIGNING": Text(
        "Гарын үсэг зурсны дараа баримтад зөвшөөрөгдөөгүй өөрчлөлт (агуулга, тайлбар, маягт) "
        "орсон.",
        "The document was changed after signing (content, annotations or form fields) in a way "
        "that signatures do not allow.",
    ),
    "DOCMDP_VIOLATION": Text(
        "Баталгаажуулах гарын үсэг өөрчлөлт хориглосон боловч баримт өөрчлөгдсөн.",
        "The certifying signature forbids changes, yet the document was changed.",
    ),
    "NOT_COVERED": Text(
        "Гарын үсэг файлын өөрийн хувилбарыг бүрэн хамраагүй (ByteRange буруу).",
        "The signature does not cover its revision of the file (bad ByteRange).",
    ),
}


def explain(subindication: str | None, indication: Indication) -> Text:
    if subindication is None:
        return _TEXTS["OK"] if indication is Indication.TOTAL_PASSED else _TEXTS["GENERIC"]
    return _TEXTS.get(subindication, _TEXTS["GENERIC"])


def reason(key: str) -> Text:
    return _TEXTS[key]
