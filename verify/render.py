"""Renderings of the report model: readable text (Mongolian or English), JSON and JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from .report import DocumentReport, Indication, SignatureReport

VERDICT = {
    "mn": {
        Indication.TOTAL_PASSED: "ХҮЧИНТЭЙ",
        Indication.TOTAL_FAILED: "ХҮЧИНГҮЙ",
        Indication.INDETERMINATE: "ТОДОРХОЙГҮЙ",
        Indication.NO_SIGNATURE: "ГАРЫН ҮСЭГГҮЙ",
    },
    "en": {
        Indication.TOTAL_PASSED: "VALID",
        Indication.TOTAL_FAILED: "NOT VALID",
        Indication.INDETERMINATE: "CANNOT BE CONFIRMED",
        Indication.NO_SIGNATURE: "NOT SIGNED",
    },
}

LABELS = {
    "mn": {
        "signature": "Гарын үсэг",
        "certification": "Баталгаажуулах гарын үсэг",
        "document-timestamp": "Баримтын цагийн тэмдэг",
        "signer": "Гарын үсэг зурагч",
        "issuer": "Гэрчилгээ олгогч",
        "claimed": "Зурсан цаг (мэдэгдсэн)",
        "timestamp": "Цагийн тэмдэг",
        "level": "PAdES түвшин",
        "why": "Тайлбар",
        "detail": "Дэлгэрэнгүй",
        "summary": "{n} файл: {passed} хүчинтэй, {failed} хүчингүй, {indet} тодорхойгүй, "
        "{unsigned} гарын үсэггүй, {errors} алдаа; {rate:.1f} баримт/с",
        "none": "гарын үсэг алга",
    },
    "en": {
        "signature": "Signature",
        "certification": "Certification signature",
        "document-timestamp": "Document timestamp",
        "signer": "Signer",
        "issuer": "Issued by",
        "claimed": "Claimed signing time",
        "timestamp": "Timestamp",
        "level": "PAdES level",
        "why": "Why",
        "detail": "Detail",
        "summary": "{n} files: {passed} valid, {failed} not valid, {indet} indeterminate, "
        "{unsigned} not signed, {errors} errors; {rate:.1f} docs/s",
        "none": "no signature",
    },
}


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else "—"


def _signature_lines(sig: SignatureReport, n: int, lang: str) -> list[str]:
    lab = LABELS[lang]
    head = f"  {n}. {lab[sig.kind]} «{sig.field_name}»: {sig.indication.value}"
    if sig.subindication:
        head += f" / {sig.subindication}"
    lines = [head]
    if sig.signer is not None:
        who = ", ".join(
            x for x in (sig.signer.name, sig.signer.organisation, sig.signer.register_number) if x
        )
        lines.append(f"     {lab['signer']}: {who}")
        lines.append(f"     {lab['issuer']}: {sig.signer.issuer}")
    if sig.kind != "document-timestamp":
        lines.append(f"     {lab['claimed']}: {_time(sig.claimed_signing_time)}")
        if sig.pades_level:
            lines.append(f"     {lab['level']}: {sig.pades_level}")
    lines.append(f"     {lab['timestamp']}: {_time(sig.timestamp_time)}")
    lines.append(f"     {lab['why']}: {sig.explanation.get(lang)}")
    lines.extend(f"     {lab['detail']}: {d}" for d in sig.details[:3])
    return lines


def to_text(report: DocumentReport, lang: str = "mn") -> str:
    verdict = VERDICT[lang][report.indication]
    head = f"{report.file}: {verdict} ({report.indication.value}"
    head += f" / {report.subindication})" if report.subindication else ")"
    lines = [head, f"  {report.explanation.get(lang)}"]
    for n, sig in enumerate(report.signatures, start=1):
        lines.extend(_signature_lines(sig, n, lang))
    return "\n".join(lines)


def to_json(report: DocumentReport | Iterable[DocumentReport], *, indent: int | None = 2) -> str:
    if isinstance(report, DocumentReport):
        return json.dumps(report.to_dict(), ensure_ascii=False, indent=indent)
    return json.dumps([r.to_dict() for r in report], ensure_ascii=False, indent=indent)


def to_jsonl(report: DocumentReport) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, separators=(",", ":"))


def summary(counts: dict[str, int], seconds: float, lang: str = "mn") -> str:
    n = sum(counts.values())
    return LABELS[lang]["summary"].format(
        n=n,
        passed=counts.get("TOTAL-PASSED", 0),
        failed=counts.get("TOTAL-FAILED", 0),
        indet=counts.get("INDETERMINATE", 0),
        unsigned=counts.get("NO-SIGNATURE", 0),
        errors=counts.get("ERROR", 0),
        rate=(n / seconds) if seconds > 0 else 0.0,
    )
