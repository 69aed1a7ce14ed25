"""End to end in headless Chromium: a certificate issued through the API is printed (rendered at
150 dpi), its QR read back from the image, and the URL opened as a phone camera would; the verdict
the citizen sees follows the registry (revoked) and the signature (tampered). The pages work
without JavaScript and pass axe-core's serious and critical rules. Screenshots are kept in
test-artifacts/web/."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import REPO, SAMPLE
from tests.helpers import require_tool
from tests.web.conftest import WebServer, sample_data, tamper_pdf, tamper_seal

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
AXE = REPO / "tools" / "node_modules" / "axe-core" / "axe.min.js"
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def no_js(browser: Browser) -> Iterator[Page]:
    """A page as a citizen's locked-down browser shows it: no JavaScript."""
    context = browser.new_context(java_script_enabled=False, locale="mn-MN")
    yield context.new_page()
    context.close()


@pytest.fixture()
def with_js(browser: Browser) -> Iterator[Page]:
    """JavaScript on, only to run axe-core and to measure the layout."""
    context = browser.new_context()
    yield context.new_page()
    context.close()


def heading(page: Page) -> str:
    return page.locator("section.verdict h1").inner_text()


def axe_problems(page: Page) -> list[str]:
    """axe-core's violations of impact serious or critical, one line each."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing (run `npm ci --prefix tools`)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    assert len(result["passes"]) > 10, "axe-core did not run its rules"
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def qr_from_print(pdf: bytes, tmp: Path) -> str:
    """The QR text as a phone reads it off the printed page: pdftoppm at 150 dpi, zxing-cpp."""
    require_tool("pdftoppm")
    doc = tmp / "doc.pdf"
    doc.write_bytes(pdf)
    cmd = ["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(doc), str(tmp / "p")]
    subprocess.run(cmd, check=True)
    (png,) = sorted(tmp.glob("p*.png"))
    with Image.open(png) as image:
        found = zxingcpp.read_barcodes(
            image.convert("L"), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
    texts = [r.text for r in found if r.valid]
    assert len(texts) == 1, f"expected one QR on the page, found {texts}"
    return texts[0]


@pytest.fixture()
def issued(server: WebServer, client: httpx.Client, tmp_path: Path) -> tuple[str, str, bytes]:
    """(document id, QR URL read from the printed page, signed PDF)."""
    r = client.post(
        "/api/v1/issue",
        json={"template": "residence", "key": "seal-a", "data": sample_data()},
        headers=server.auth_a,
    )
    assert r.status_code == 200, r.text
    url = qr_from_print(r.content, tmp_path)
    assert url == r.headers["x-seal-url"]
    return r.headers["x-document-id"], url, r.content


def test_seal_page_lifecycle_without_javascript(
    server: WebServer,
    client: httpx.Client,
    no_js: Page,
    issued: tuple[str, str, bytes],
    artifacts: Path,
) -> None:
    doc_id, url, _ = issued
    assert "/V/" in url and url.startswith("HTTP://127.0.0.1:")
    response = no_js.goto(url)
    assert response is not None and response.status == 200
    assert "ЖИНХЭНЭ БАРИМТ" in heading(no_js)
    assert "Б" in no_js.locator("dd").nth(5).inner_text()  # masked name, first letter shown
    assert "Батбаярын Энх-Амгалан" not in no_js.content()  # never the full name
    no_js.screenshot(path=str(artifacts / "seal-authentic-mn.png"), full_page=True)

    no_js.get_by_role("link", name="English").click()
    assert "AUTHENTIC" in heading(no_js)
    assert no_js.url.endswith("?lang=en")
    no_js.screenshot(path=str(artifacts / "seal-authentic-en.png"), full_page=True)

    no_js.get_by_role("link", name="Монгол").click()
    assert "ЖИНХЭНЭ БАРИМТ" in heading(no_js)

    revoked = client.post(
        f"/api/v1/documents/{doc_id}/revoke", json={"reason": "test"}, headers=server.auth_a
    )
    assert revoked.status_code == 200, revoked.text
    no_js.reload()
    assert "ХҮЧИНГҮЙ БОЛСОН" in heading(no_js)
    assert "ЖИНХЭНЭ БАРИМТ" not in no_js.content()
    no_js.screenshot(path=str(artifacts / "seal-revoked-mn.png"), full_page=True)


def test_tampered_seal_is_not_authentic(
    no_js: Page, issued: tuple[str, str, bytes], artifacts: Path
) -> None:
    _, url, _ = issued
    no_js.goto(tamper_seal(url))
    assert "ЖИНХЭНЭ БИШ" in heading(no_js)
    assert no_js.locator("dl").count() == 0  # claims of a forged seal are not shown
    no_js.screenshot(path=str(artifacts / "seal-tampered-mn.png"), full_page=True)


def test_upload_tampered_pdf_without_javascript(
    no_js: Page, server: WebServer, client: httpx.Client, artifacts: Path, tmp_path: Path
) -> None:
    signed = client.post(
        "/api/v1/sign", params={"key": "seal-a"}, content=SAMPLE.read_bytes(), headers=server.auth_a
    )
    assert signed.status_code == 200, signed.text
    bad = tmp_path / "tampered.pdf"
    bad.write_bytes(tamper_pdf(signed.content))

    no_js.goto(server.url + "/")
    no_js.screenshot(path=str(artifacts / "upload-mn.png"), full_page=True)
    no_js.set_input_files("input[type=file]", str(bad))
    no_js.get_by_role("button", name="Шалгах").click()
    no_js.wait_for_url("**/verify")
    assert "ХҮЧИНГҮЙ" in heading(no_js)
    verdict = no_js.locator("section.verdict").inner_text()
    assert "TOTAL-FAILED" in verdict
    assert "Баримт гарын үсэг зурсны дараа өөрчлөгдсөн" in verdict
    no_js.screenshot(path=str(artifacts / "upload-report-tampered-mn.png"), full_page=True)

    good = tmp_path / "signed.pdf"
    good.write_bytes(signed.content)
    no_js.goto(server.url + "/?lang=en")
    no_js.set_input_files("input[type=file]", str(good))
    no_js.get_by_role("button", name="Check").click()
    no_js.wait_for_url("**/verify")
    assert "VALID" in heading(no_js) and "NOT VALID" not in heading(no_js)
    assert "TOTAL-PASSED" in no_js.locator("section.verdict").inner_text()


@pytest.mark.parametrize("variant", ["authentic", "tampered", "authentic-en"])
def test_seal_page_accessibility(
    with_js: Page, issued: tuple[str, str, bytes], variant: str
) -> None:
    _, url, _ = issued
    target = tamper_seal(url) if variant == "tampered" else url
    with_js.goto(target + ("?lang=en" if variant.endswith("-en") else ""))
    assert axe_problems(with_js) == []


@pytest.mark.parametrize("lang", ["mn", "en"])
def test_upload_page_accessibility(with_js: Page, server: WebServer, lang: str) -> None:
    with_js.goto(f"{server.url}/?lang={lang}")
    assert axe_problems(with_js) == []


def test_seal_page_on_a_phone(
    browser: Browser, issued: tuple[str, str, bytes], artifacts: Path
) -> None:
    _, url, _ = issued
    context = browser.new_context(**PHONE)
    try:
        page = context.new_page()
        page.goto(url)
        assert "ЖИНХЭНЭ БАРИМТ" in heading(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
        box = page.locator("section.verdict h1").bounding_box()
        assert box is not None and box["y"] < 844 / 2  # the verdict is seen without scrolling
        page.screenshot(path=str(artifacts / "seal-authentic-phone.png"), full_page=True)
    finally:
        context.close()


def test_report_page_accessibility(
    with_js: Page, server: WebServer, client: httpx.Client, tmp_path: Path
) -> None:
    signed = client.post(
        "/api/v1/sign", params={"key": "seal-a"}, content=SAMPLE.read_bytes(), headers=server.auth_a
    )
    bad = tmp_path / "tampered.pdf"
    bad.write_bytes(tamper_pdf(signed.content))
    with_js.goto(server.url + "/")
    with_js.set_input_files("input[type=file]", str(bad))
    with_js.get_by_role("button", name="Шалгах").click()
    with_js.wait_for_url("**/verify")
    assert "TOTAL-FAILED" in with_js.locator("section.verdict").inner_text()
    assert axe_problems(with_js) == []
