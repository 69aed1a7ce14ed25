"""Run every benchmark in bench/ and print its figures (`make bench`). Never fails a build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "sign_throughput.py",
    "verify_throughput.py",
    "batch_verify.py",
    "batch_verify_online.py",
    "many_signatures.py",
    "issue_throughput.py",
    "web_load.py",
    "web_hostile.py",
]


def main() -> None:
    for name in BENCHES:
        if not (HERE / name).exists():
            continue
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, str(HERE / name), *sys.argv[1:]], check=False)


if __name__ == "__main__":
    main()
