"""Latest wins: the scheduling of preview updates, in one place.

A person dragging a point sends an update per mouse move; only the newest matters, and every stale
one the compute thread works through delays it (19 of a 20-step drag's requests used to be computed
after the page had dropped them: the final preview came 11 s after the drag began). So, per photo,
at most one update computes and at most one waits: a newer request takes the waiting one's place,
and the one it replaces is answered at once as superseded (409). A request whose client has gone
by the time its turn comes is never started. Requests may carry their page's order (the browser
sends them on several connections, so they can arrive out of order): one older than a request
already seen for the photo is superseded on arrival, never the newer one. Everything here runs on
the server's event loop, so the bookkeeping needs no locks; the work itself runs on the compute thread.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, TypeVar

from cunet.studio.compute import ComputeThread

Result = TypeVar("Result")


class Superseded(Exception):
    """A waiting update that a newer one of the same photo replaced."""


class ClientGone(Exception):
    """An update whose client disconnected before its turn came: it was not started."""


class LatestWins:
    """Per key (a photo id): one computation running, at most one waiting; a newer one replaces the waiting one."""

    def __init__(self, compute: ComputeThread) -> None:
        self._compute = compute
        self._running: set[str] = set()
        self._waiting: dict[str, asyncio.Future] = {}
        self._newest: dict[str, int] = {}  # per busy key, the highest order seen

    def state(self, key: str) -> tuple[bool, bool]:
        """(running, waiting) for `key`: what the tests and the benchmark look at."""
        return key in self._running, key in self._waiting

    async def run(self, key: str, work: Callable[[], Result], gone: Callable[[], Awaitable[bool]],
                  order: int | None = None) -> Result:
        """`work()` on the compute thread once it is `key`'s turn; Superseded if a newer request took
        this one's place while it waited (or, by `order`, one newer had already come), ClientGone if
        `gone()` says its client left before its turn."""
        if order is not None:
            if key in self._newest and order < self._newest[key]:
                raise Superseded()
            self._newest[key] = order
        if key in self._running:
            turn = asyncio.get_running_loop().create_future()
            replaced = self._waiting.get(key)
            if replaced is not None and not replaced.done():
                replaced.set_exception(Superseded())
            self._waiting[key] = turn
            try:
                await turn
            except asyncio.CancelledError:
                if self._waiting.get(key) is turn:
                    del self._waiting[key]
                elif turn.done() and not turn.cancelled() and turn.exception() is None:
                    self._hand_over(key)  # the slot had passed to this request: pass it on
                raise
        else:
            self._running.add(key)
        try:
            if await gone():
                raise ClientGone()
            return await asyncio.wrap_future(self._compute.submit(work))
        finally:
            self._hand_over(key)

    def _hand_over(self, key: str) -> None:
        """The running computation of `key` ended: the waiting one (if any) takes its slot."""
        waiting = self._waiting.pop(key, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)
        else:
            self._running.discard(key)
            self._newest.pop(key, None)
