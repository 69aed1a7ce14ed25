"""Verify untrusted uploads in warm, killable worker processes with memory, CPU and time limits.

Reading limits (:mod:`verify.limits`) stop the attacks we know; this stops the ones we do not.
Each job runs in a worker process whose address space is capped (``RLIMIT_AS``, so a runaway
allocation raises ``MemoryError`` in the worker and nowhere else), whose CPU time for the job is
capped (``RLIMIT_CPU``, re-armed before every job because the kernel counts a process's whole
life), and whose answer the parent awaits for at most ``wall_seconds``. A worker that hits a
limit, or whose caller went away (the coroutine was cancelled), is killed and replaced; the
others keep serving.

Why plain subprocesses with a pipe protocol rather than :mod:`multiprocessing`: a pool cannot
kill the one worker running a given job, and its result plumbing runs in threads; an asyncio
subprocess is awaited on the service's own event loop, killed by its pid, and its death is seen
as end-of-file on its pipe. Workers are started as ``python -c`` running this module's
:func:`main` (a fresh interpreter, nothing inherited from the service: no sockets, no database
handles, only a few environment variables), import pyHanko and build their :class:`Verifier`
once, then answer many jobs.

Frames are a 4-byte big-endian length and a pickle. The parent unpickles only the report classes
and :mod:`datetime` types, so a worker subverted by a file cannot make the parent run code.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import io
import itertools
import logging
import math
import os
import pickle
import resource
import signal
import struct
import sys
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from asn1crypto import x509

from esign.errors import EsignError
from esign.pdfio import read_input

from .limits import GiB, limit_report, size_text
from .pdf import Verifier, VerifyOptions
from .report import DocumentReport
from .trust import TrustConfig

_HEADER = struct.Struct(">I")
MAX_REPORT = 16 * 2**20
"""Largest answer a worker may send; a report is a few kilobytes."""
_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
"""What a worker inherits of the service's environment: no database URL, no secrets."""
JOBS_PER_WORKER = 10_000
"""A worker is replaced after this many jobs, a backstop: it is replaced as soon as its address
space, which it reports with every answer, has grown by half its headroom (heap fragmentation
after a large file; :meth:`_Worker.fresh`). A replacement costs a start (0.33 s of CPU importing
pyHanko) and cold caches (a first document 34 ms against 11): at the former 200 jobs, a sixth of
a long batch's CPU time."""
_READY_SECONDS = 60.0
_WORKER = "import gc; gc.disable(); import verify.isolate as m; m.main()"
"""A worker's program: as ``python -m verify.isolate``, without collections while the imports
build objects that all stay (as the one-file CLI; frozen in :func:`_worker_main`): 30 ms of each
worker's start. Not esign.lazyimports: a worker that deferred pyHanko's package initialisation
sometimes spent its whole CPU limit (20 s) on an address-space bomb instead of answering "memory
limit" in 2 s (3 of 6 runs of tests/verify/test_limits.py's memory scenario), and a start only
saves 0.16 s CPU with it."""


class WorkerFailed(EsignError):
    """A verification worker could not be started or answered with something other than a report
    (a bug in the verifier, not a verdict on the file)."""

    exit_code = 3


@dataclass(frozen=True)
class _Config:
    """What a worker needs; certificates travel as DER (asn1crypto objects do not unpickle in a
    fresh interpreter)."""

    anchors: tuple[bytes, ...]
    intermediates: tuple[bytes, ...]
    seal_certs: tuple[bytes, ...]
    fetch_allow: tuple[str, ...]
    source: str
    options: VerifyOptions
    memory_bytes: int
    cpu_seconds: int
    nice: int = 0

    @classmethod
    def of(
        cls,
        trust: TrustConfig,
        options: VerifyOptions,
        memory_bytes: int,
        cpu_seconds: int,
        nice: int = 0,
    ) -> _Config:
        return cls(
            anchors=tuple(c.dump() for c in trust.anchors),
            intermediates=tuple(c.dump() for c in trust.intermediates),
            seal_certs=tuple(c.dump() for c in trust.seal_certs),
            fetch_allow=trust.fetch_allow,
            source=trust.source,
            options=options,
            memory_bytes=memory_bytes,
            cpu_seconds=cpu_seconds,
            nice=nice,
        )

    def trust(self) -> TrustConfig:
        def load(ders: tuple[bytes, ...]) -> tuple[x509.Certificate, ...]:
            return tuple(x509.Certificate.load(d) for d in ders)

        return TrustConfig(
            anchors=load(self.anchors),
            fetch_allow=self.fetch_allow,
            intermediates=load(self.intermediates),
            seal_certs=load(self.seal_certs),
            source=self.source,
        )


class _ReportUnpickler(pickle.Unpickler):
    _ALLOWED = frozenset(
        {
            ("verify.report", "DocumentReport"),
            ("verify.report", "SignatureReport"),
            ("verify.report", "Signer"),
            ("verify.report", "Text"),
            ("verify.report", "Indication"),
            ("datetime", "datetime"),
            ("datetime", "date"),
            ("datetime", "timezone"),
            ("datetime", "timedelta"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"a worker answered with {module}.{name}")
        return super().find_class(module, name)


def _frame(obj: object) -> bytes:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.jobs = 0
        self.leaving = False
        """It said its last word and exits by itself (killing it would race its reaping)."""
        self.least: int | None = None
        """The smallest address space it reported after a job: what it needs to serve."""

    def fresh(self, address_space: int, cap: int) -> bool:
        """Whether the worker keeps at least half the headroom under ``cap`` it had at its
        leanest (one that has grown past that, by fragmentation after a large file, say, is
        replaced before it meets the cap)."""
        least = address_space if self.least is None else min(self.least, address_space)
        self.least = least
        return address_space - least <= (cap - least) // 2

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def send(self, obj: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(_frame(obj))
        await self.proc.stdin.drain()

    async def receive(self) -> tuple[str, Any]:
        assert self.proc.stdout is not None
        (n,) = _HEADER.unpack(await self.proc.stdout.readexactly(_HEADER.size))
        if n > MAX_REPORT:
            raise WorkerFailed(f"a verification worker sent {n} bytes")
        body = await self.proc.stdout.readexactly(n)
        kind, payload = _ReportUnpickler(io.BytesIO(body)).load()
        self.leaving = kind in ("memory", "error")
        return str(kind), payload

    def kill(self) -> None:
        if self.proc.returncode is None and not self.leaving:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


class IsolatedVerifier:
    """Verifies untrusted PDFs in ``workers`` warm worker processes, one job per worker at a time.

    Use from one event loop (workers are subprocesses of the loop that starts them). ``verify``
    returns a report for every file: a hit limit is TOTAL-FAILED/FORMAT_FAILURE naming the limit.
    """

    def __init__(
        self,
        trust: TrustConfig,
        options: VerifyOptions | None = None,
        *,
        workers: int = 2,
        memory_bytes: int = 1 * GiB,
        cpu_seconds: int = 20,
        wall_seconds: float = 30.0,
        nice: int = 0,
    ) -> None:
        """``nice`` lowers the workers' scheduling priority: a server gives its own request
        handling the CPU first (on 2 cores, 8 CPU-heavy uploads at normal priority put the seal
        page's p99 at about 5x its quiet p99)."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.options = options or VerifyOptions()
        self.workers = workers
        self.memory_bytes = memory_bytes
        self.cpu_seconds = cpu_seconds
        self.wall_seconds = wall_seconds
        self._config = _Config.of(trust, self.options, memory_bytes, cpu_seconds, nice)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._warming: list[asyncio.Task[_Worker]] = []
        self._slots: asyncio.Semaphore | None = None
        self._closed = False
        self._reaping: set[asyncio.Task[int]] = set()

    async def start(self) -> None:
        """Start and warm the workers now (otherwise the first ``verify`` does)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
            self._warming = [self._warm() for _ in range(self.workers)]

    def _warm(self) -> asyncio.Task[_Worker]:
        return asyncio.get_running_loop().create_task(self._spawn())

    async def _spawn(self) -> _Worker:
        root = str(Path(__file__).resolve().parent.parent)
        env = {k: v for k, v in os.environ.items() if k.upper() in _ENVIRONMENT}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        # Each thread (revocation fetching runs in asyncio's executor) would otherwise reserve a
        # 64 MiB malloc arena of address space, counted against RLIMIT_AS.
        env["MALLOC_ARENA_MAX"] = "2"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            limit=2**16,
        )
        worker = _Worker(proc)
        try:
            await worker.send(self._config)
            kind, _ = await asyncio.wait_for(worker.receive(), _READY_SECONDS)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError) as e:
            worker.kill()
            await proc.wait()
            raise WorkerFailed(f"the verification worker did not start ({e!r})") from e
        except BaseException:
            worker.kill()
            raise
        if kind != "ready":
            worker.kill()
            raise WorkerFailed(f"the verification worker did not start ({kind})")
        return worker

    async def _take(self) -> _Worker:
        if self._idle:
            return self._idle.pop()
        task = self._warming.pop(0) if self._warming else self._warm()
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._warming.append(task)  # still warming: the next caller takes it
            raise
        except BaseException:
            self._warming.append(self._warm())  # try again for the next caller
            raise

    @property
    def pids(self) -> set[int]:
        """The pids of the running workers (idle and busy), for health checks and tests."""
        warm = [
            t.result()
            for t in self._warming
            if t.done() and not t.cancelled() and not t.exception()
        ]
        return {w.pid for w in (*self._idle, *self._busy, *warm) if w.proc.returncode is None}

    @property
    def busy_pids(self) -> set[int]:
        """The pids of the workers running a job now."""
        return {w.pid for w in self._busy}

    async def verify(self, data: bytes, name: str) -> DocumentReport:
        """Verify ``data`` in a worker; cancelling this coroutine kills that worker."""
        if self._closed:
            raise WorkerFailed("the isolated verifier is closed")
        await self.start()
        assert self._slots is not None
        async with self._slots:
            worker = await self._take()
            self._busy.add(worker)
            keep = False
            try:
                report, keep = await self._run(worker, data, name)
                return report
            finally:
                self._busy.discard(worker)
                worker.jobs += 1
                if keep and worker.jobs < JOBS_PER_WORKER and not self._closed:
                    self._idle.append(worker)
                else:
                    worker.kill()
                    self._reap(worker)
                    if not self._closed:
                        self._warming.append(self._warm())

    def _reap(self, worker: _Worker) -> None:
        async def reap() -> int:
            try:
                return await asyncio.wait_for(worker.proc.wait(), 5)
            except TimeoutError:  # a leaving worker that does not leave
                worker.leaving = False
                worker.kill()
                return await worker.proc.wait()

        task = asyncio.get_running_loop().create_task(reap())
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    async def _run(self, worker: _Worker, data: bytes, name: str) -> tuple[DocumentReport, bool]:
        async def exchange() -> tuple[str, Any]:
            await worker.send(("job", data, name))
            return await worker.receive()

        try:
            async with asyncio.timeout(self.wall_seconds):  # no task per job, as wait_for makes
                kind, payload = await exchange()
        except TimeoutError:
            worker.kill()
            limit = f"time limit {self.wall_seconds:g} s exceeded"
            return self._limit(name, limit), False
        except (asyncio.IncompleteReadError, ConnectionError):
            # The worker closed its pipe: it is dying. No kill() first: Popen.send_signal polls,
            # and a poll that reaps the child leaves asyncio's watcher returncode 255.
            try:
                code = await asyncio.wait_for(worker.proc.wait(), 5)
            except TimeoutError:
                worker.kill()
                code = await worker.proc.wait()
            return self._limit(name, self._death(code)), False
        except pickle.UnpicklingError as e:
            raise WorkerFailed(str(e)) from e
        if kind == "report" and isinstance(payload, tuple) and len(payload) == 2:
            report, address_space = payload
            if isinstance(report, DocumentReport) and isinstance(address_space, int):
                return report, worker.fresh(address_space, self.memory_bytes)
        if kind == "memory":
            limit = f"memory limit {size_text(self.memory_bytes)} exceeded"
            return self._limit(name, limit), False
        raise WorkerFailed(f"the verification worker failed: {payload}")

    def _limit(self, name: str, detail: str) -> DocumentReport:
        return limit_report(name, detail, self.options.at, self.options.online)

    def _death(self, code: int) -> str:
        """The limit a worker that died without answering hit; a Python error is a bug, raised."""
        if code >= 0:
            raise WorkerFailed(f"the verification worker exited with code {code}")
        if code == -signal.SIGXCPU:
            return f"CPU time limit {self.cpu_seconds} s exceeded"
        if code == -signal.SIGKILL:
            return "the verification worker was killed"
        return (
            f"the verification worker stopped ({signal.Signals(-code).name}) under its limits "
            f"(memory {size_text(self.memory_bytes)}, CPU {self.cpu_seconds} s)"
        )

    async def aclose(self) -> None:
        """Kill every worker and wait for them."""
        workers = self._stop()
        for w in workers:
            await w.proc.wait()

    def close(self) -> None:
        """Kill every worker (for synchronous shutdown hooks)."""
        self._stop()

    def _stop(self) -> list[_Worker]:
        self._closed = True
        workers = [*self._idle, *self._busy]
        for task in self._warming:
            if task.done() and not task.cancelled() and task.exception() is None:
                workers.append(task.result())
            else:
                task.cancel()
        self._idle, self._warming = [], []
        for w in workers:
            w.kill()
        return workers


def batch_workers() -> int:
    """Workers for a folder: one per CPU this process may run on, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


class BatchVerifier:
    """The synchronous face of :class:`IsolatedVerifier` for a batch (``esign verify`` over a
    folder): one event loop, each file in a killable worker; :meth:`verify_files` keeps
    ``workers`` of them busy at once (default :func:`batch_workers`)."""

    def __init__(
        self,
        trust: TrustConfig,
        options: VerifyOptions | None = None,
        *,
        workers: int | None = None,
        **limits: Any,
    ):
        self._runner = asyncio.Runner()
        self.workers = workers or batch_workers()
        options = options or VerifyOptions()
        if options.at is None and options.run_moment is None and not options.online:
            # Offline, one "now" for the whole run: every report states the same validation
            # time, and the workers' path caches (verify/pathcache.py, keyed by time) serve the
            # batch. Not online: a response fetched later in the run would postdate that "now".
            options = dataclasses.replace(options, run_moment=datetime.now(UTC))
        self._isolated = IsolatedVerifier(trust, options, workers=self.workers, **limits)

    def verify_file(self, path: Path) -> DocumentReport:
        data = read_input(path)  # unreadable files stay the caller's InputError
        return self._runner.run(self._isolated.verify(data, str(path)))

    def verify_files(
        self, paths: Sequence[Path]
    ) -> Generator[tuple[Path, DocumentReport | EsignError], None, None]:
        """Each path with its report, or the error that kept it from being read, in the order
        of ``paths``. Up to ``4 * workers`` files are read and in flight at once, topped up as
        each report is handed out, so no worker waits for the slowest file of a window."""

        async def one(path: Path) -> DocumentReport | EsignError:
            try:
                data = read_input(path)
            except EsignError as e:
                return e
            return await self._isolated.verify(data, str(path))

        async def done(task: asyncio.Task[DocumentReport | EsignError]) -> Any:
            return await task

        async def settled(tasks: list[asyncio.Task[DocumentReport | EsignError]]) -> None:
            await asyncio.gather(*tasks, return_exceptions=True)

        loop = self._runner.get_loop()
        waiting = iter(paths)
        flying: collections.deque[tuple[Path, asyncio.Task[DocumentReport | EsignError]]]
        flying = collections.deque()
        try:
            while True:
                for path in itertools.islice(waiting, 4 * self.workers - len(flying)):
                    flying.append((path, loop.create_task(one(path))))
                if not flying:
                    return
                path, task = flying[0]
                # the loop runs only while the next report is awaited: one already in is handed
                # out at once (its files' successors start on the next run, behind the window)
                result = task.result() if task.done() else self._runner.run(done(task))
                flying.popleft()
                yield path, result
        finally:
            for _, task in flying:
                task.cancel()  # a caller that stops early: its files' workers are killed
            if flying and not loop.is_closed():
                tasks = [task for _, task in flying]
                self._runner.run(settled(tasks))

    def close(self) -> None:
        try:
            self._runner.run(self._isolated.aclose())
        finally:
            self._runner.close()

    def __enter__(self) -> BatchVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The worker side: runs in ``python -m verify.isolate``.


def _read_frame(stream: BinaryIO) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (n,) = _HEADER.unpack(head)
    body = stream.read(n)
    if len(body) < n:
        return None
    return pickle.loads(body)


def _write_frame(stream: BinaryIO, obj: object) -> None:
    stream.write(_frame(obj))
    stream.flush()


def _arm_cpu(seconds: int) -> None:
    """Allow ``seconds`` more CPU time from now; the kernel sends SIGXCPU (fatal) past it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    resource.setrlimit(resource.RLIMIT_CPU, (used + seconds, resource.RLIM_INFINITY))


def _address_space() -> int:
    """This process's address space in bytes (what RLIMIT_AS counts), or 0 where unknown."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _worker_main() -> None:
    # The pipes are the protocol: keep them private, send anything printed to stderr.
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    logging.basicConfig(level=logging.ERROR)
    config = _read_frame(inp)
    if not isinstance(config, _Config):
        return  # the parent went away before configuring this worker
    if config.nice:
        os.nice(config.nice)
    verifier = Verifier(config.trust(), config.options)
    # The interpreter and pyHanko as imported are never garbage: kept out of the collector's
    # full collections, which then scan only what the jobs built (verify/pdf.py's
    # _document_garbage collects each document's own cycles when it is done).
    gc.freeze()
    gc.enable()  # disabled while importing (_WORKER)
    resource.setrlimit(resource.RLIMIT_AS, (config.memory_bytes, config.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would dump the whole heap
    _write_frame(out, ("ready", os.getpid()))
    while True:
        try:
            job = _read_frame(inp)
            if job is None:
                return
            _, data, name = job
            _arm_cpu(config.cpu_seconds)
            report = verifier.verify_bytes(data, name)
            del job, data
            _write_frame(out, ("report", (report, _address_space())))
        except MemoryError:
            job = data = None  # let the big allocations go before answering
            _write_frame(out, ("memory", None))
            return
        except EsignError as e:
            _write_frame(out, ("error", f"{type(e).__name__}: {e}"))
            return


def main() -> None:
    """A worker's entry point (see :data:`_WORKER`)."""
    try:
        _worker_main()
    except BrokenPipeError:
        # The parent went away (server shutdown while this worker warmed up): nothing to report.
        os._exit(0)


if __name__ == "__main__":
    # Run the imported module's copy, so that pickled classes match (not ``__main__``'s).
    from verify.isolate import main as imported_main

    imported_main()


__all__ = ["BatchVerifier", "IsolatedVerifier", "WorkerFailed", "batch_workers"]
