"""Load on the citizens' seal page: `esign serve --workers 2`, one issued certificate, and
`wrk -t2 -c32 -d15s` on GET /V/<payload>. Target (issue 5): at least 300 req/s with p95 under
50 ms on a 2-core machine. Prints figures; never fails a build.

    python bench/web_load.py [--duration 15s] [--connections 32] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from esign import testpki  # noqa: E402
from esign.errors import ServiceError  # noqa: E402
from esign.services import PkiServices  # noqa: E402
from verify.web.config import hash_api_key  # noqa: E402

PASSWORD_ENV = "ESIGN_BENCH_P12_PASSWORD"
API_KEY = "bench-" + os.urandom(8).hex()

# wrk's summary misses p95; print what we need from the `done` hook, in microseconds.
WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d duration_us=%d errors=%d non2xx=%d\\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
  for _, p in pairs({50, 90, 95, 99}) do
    io.write(string.format("BENCH p%d_us=%d\\n", p, latency:percentile(p)))
  end
  io.write(string.format("BENCH max_us=%d mean_us=%.0f\\n", latency.max, latency.mean))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(pki: testpki.TestPki, folder: Path, port: int) -> Path:
    trust = folder / "trust.toml"
    trust.write_text(
        f"anchors = [{json.dumps(str(pki.trust_dir))}]\n"
        f"intermediates = [{json.dumps(str(pki.intermediates_dir))}]\n"
        f"seal_certificates = [{json.dumps(str(pki.seals_dir))}]\n",
        encoding="utf-8",
    )
    config = folder / "server.toml"
    config.write_text(
        f"""base_url = "http://127.0.0.1:{port}"
registry = {json.dumps(f"sqlite:///{folder / 'registry.sqlite3'}")}
trust = [{json.dumps(str(trust))}]

[signing_keys.seal]
key = {json.dumps(str(pki.p12("mn-ec", "seal")))}
password_env = "{PASSWORD_ENV}"
level = "B-T"
tsa = {json.dumps(pki.tsa_url("mn-ec"))}

[[clients]]
name = "bench"
api_key_sha256 = "{hash_api_key(API_KEY)}"
keys = ["seal"]
doc_types = ["residence"]
""",
        encoding="utf-8",
    )
    return config


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"esign serve exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit("esign serve did not answer /healthz")


def issue_one(url: str) -> str:
    data = json.loads((REPO / "samples" / "data" / "residence.json").read_text(encoding="utf-8"))
    data["number"] = f"ОСХ-2026-{int(time.time() * 1000) % 10**9:09d}"
    data["issued"] = time.strftime("%Y-%m-%d", time.gmtime())
    r = httpx.post(
        f"{url}/api/v1/issue",
        json={"template": "residence", "key": "seal", "data": data},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=120,
    )
    r.raise_for_status()
    return r.headers["x-seal-url"]


def run_wrk(target: str, threads: int, connections: int, duration: str, folder: Path) -> str:
    script = folder / "report.lua"
    script.write_text(WRK_SCRIPT)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency",
           "-s", str(script), target]  # fmt: skip
    print("$", " ".join(cmd[:-1]), target[:60] + "…", flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def figures(out: str) -> dict[str, float]:
    found = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", "\n".join(
        line for line in out.splitlines() if line.startswith("BENCH")
    ))}  # fmt: skip
    found["rps"] = found["requests"] / (found["duration_us"] / 1e6)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="15s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", default="3s")
    args, _ = parser.parse_known_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk); skipped")
        return
    pki = testpki.build()
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(ServiceError):  # already served, e.g. by `esign pki serve`
            stack.enter_context(PkiServices(pki))
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="esign-web-bench-")))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = write_config(pki, folder, port)
        env = {**os.environ, PASSWORD_ENV: testpki.P12_PASSWORD, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--config", str(config),
             "--workers", str(args.workers)],
            cwd=REPO, env=env,
        )  # fmt: skip
        try:
            wait_healthy(url, proc)
            seal = issue_one(url)
            target = f"{url}/V/{seal.split('/V/', 1)[1]}"
            page = httpx.get(target, timeout=30)
            verdict = "authentic" if "ЖИНХЭНЭ БАРИМТ" in page.text else "NOT authentic"
            print(f"seal page: HTTP {page.status_code}, {len(page.content)} bytes, {verdict}")
            run_wrk(target, args.threads, args.connections, args.warmup, folder)  # warm caches
            f = figures(run_wrk(target, args.threads, args.connections, args.duration, folder))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    ms = {k: f[k] / 1000 for k in ("p50_us", "p90_us", "p95_us", "p99_us", "max_us")}
    print(
        f"GET /V/<payload>, {args.workers} workers, {args.connections} connections: "
        f"{f['rps']:.0f} req/s; latency p50 {ms['p50_us']:.1f} ms, p90 {ms['p90_us']:.1f} ms, "
        f"p95 {ms['p95_us']:.1f} ms, p99 {ms['p99_us']:.1f} ms, max {ms['max_us']:.1f} ms; "
        f"errors {f['errors']:.0f}, non-2xx {f['non2xx']:.0f}"
    )
    met = f["rps"] >= 300 and ms["p95_us"] < 50
    print(f"target ≥300 req/s with p95 <50 ms: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
