"""One long-lived thread for every tensor computation of a studio server.

PyTorch's CPU kernels run on OpenMP (libgomp), whose worker teams belong to the thread that started
them. Once two threads own teams, libgomp manages more threads than there are cores and stops
spinning between parallel regions; each of a hint update's many small regions then waits for its
workers to be woken. A web server answers on a pool of threads, so that happened on every request:
on this project's 2-core CPU, a colour-point update took 2.5x as long on a second thread as on the
one that had loaded the model (benchmarks/compute_thread.py). The server therefore hands all of its
tensor work, model loading included, to this one thread, which also serialises it (each
computation already uses every core).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

Result = TypeVar("Result")


class ComputeThread:
    """Runs functions one at a time on a single dedicated thread; callers wait for the result."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="cunet-compute")

    def __call__(self, function: Callable[..., Result], *args, **kwargs) -> Result:
        """Run `function(*args, **kwargs)` on the compute thread; its result, or its exception, comes back."""
        return self.submit(function, *args, **kwargs).result()

    def submit(self, function: Callable[..., Result], *args, **kwargs) -> Future:
        """Queue `function(*args, **kwargs)` on the compute thread without waiting (`asyncio.wrap_future` awaits it)."""
        return self._executor.submit(function, *args, **kwargs)

    def close(self) -> None:
        """Let the thread end once its queued work is done (its OpenMP team goes with it)."""
        self._executor.shutdown(wait=False)
