"""Uploads' own lane: verification of uploaded PDFs runs in separate worker processes, at most
``workers`` at a time with ``queue`` more waiting; beyond that the answer is 503 with
Retry-After. Citizens' seal pages never wait behind an upload (issue 9: 100 parallel uploads
took the seal page to 0 req/s when both shared one thread pool).

When the client leaves, its verification is cancelled, and cancelling kills the worker
process that was running it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..report import DocumentReport
from .gate import Receive

T = TypeVar("T")

VerifyFn = Callable[[bytes, str], Awaitable[DocumentReport]]


class UploadsBusy(Exception):
    """Every worker is busy and the queue is full."""


class ClientGone(Exception):
    """The client disconnected before its verification finished; the work was stopped."""


class UploadLane:
    def __init__(self, verify: VerifyFn, workers: int, queue: int) -> None:
        self._verify = verify
        self._slots = asyncio.Semaphore(workers)
        self._admitted = 0
        self._capacity = workers + queue

    @property
    def admitted(self) -> int:
        """Uploads running or waiting now."""
        return self._admitted

    async def verify(self, data: bytes, name: str, receive: Receive) -> DocumentReport:
        """The report of ``data``; :class:`UploadsBusy` at once when the lane is full,
        :class:`ClientGone` if the client leaves while its upload waits or runs."""
        if self._admitted >= self._capacity:
            raise UploadsBusy()
        self._admitted += 1
        try:
            return await until_disconnect(receive, self._run(data, name))
        finally:
            self._admitted -= 1

    async def _run(self, data: bytes, name: str) -> DocumentReport:
        async with self._slots:
            return await self._verify(data, name)


WORKER_NICE = 10
"""Scheduling priority of the verification workers: on a 2-core machine, 8 CPU-heavy uploads at
normal priority put the seal page's p99 at about 5x its quiet p99; at nice 10 the server's own
process wins the CPU and uploads take what is left."""


async def until_disconnect(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work`` unless the client disconnects first; then cancel it and raise ClientGone.
    Call only once the body is read: what ``receive`` gives next is the disconnect."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if task.cancelled():
        raise ClientGone()
    return task.result()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
