# Two commands for a new user: `make demo` and `make test`. Each installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := poppler-utils softhsm2 opensc libnss3-tools zbar-tools fonts-dejavu-core chromium wrk default-jdk-headless libitext5-java libpdfbox2-java libbcprov-java libbcpkix-java \
  mupdf-tools qpdf libreoffice-writer-nogui

.PHONY: demo test bench lint system-deps venv axe seal-verifier-js

# The runtime, what `pip install esign` brings: all the demo needs.
$(BIN)/esign: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

# Linters, type checker, test and benchmark tools.
$(VENV)/.dev: $(BIN)/esign
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.dev

# Debian packages the tests use as independent judges (pdfsig, pdftotext, zbarimg) and SoftHSM2;
# mupdf-tools, qpdf and LibreOffice sign, encrypt and export files for the interop matrix.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing; fi; fi

# axe-core (npm) for the accessibility checks of the web pages in tests/web.
tools/node_modules/axe-core/axe.min.js: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --silent

axe: tools/node_modules/axe-core/axe.min.js

# The independent Node verifier of the QR seal (tests/verify/test_seal_vectors_node.py).
tools/seal-verifier-js/node_modules/.package-lock.json: tools/seal-verifier-js/package-lock.json
	npm ci --prefix tools/seal-verifier-js --no-audit --no-fund --silent

seal-verifier-js: tools/seal-verifier-js/node_modules/.package-lock.json

# The first command on a fresh machine: Python and pip only, no Debian package (PDF pages are
# rendered in-process by pypdfium2). State (test PKI) goes to ~/.local/share/esign.
demo: $(BIN)/esign
	$(BIN)/esign demo --out demo-out

test: venv system-deps axe seal-verifier-js
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: venv
	$(BIN)/python bench/run.py
