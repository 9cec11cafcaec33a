"""Where trials run: a given executor, a Dask client, a process pool, or this process."""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from multiprocessing.reduction import ForkingPickler
from typing import Any

from seamtape._errors import SeamtapeError

from ._oracle import SPEC as _SPEC

__all__ = ["UNSENDABLE", "check_sendable", "process_pool", "shutdown_pools"]

UNSENDABLE = (
    "a trial cannot be sent to a worker process ({exc}): define the agent and the oracle at "
    "module level, pass them as 'pkg.mod:fn', or run in-process with workers=1"
)


class _InProcess(Executor):
    """Runs each trial as it is submitted, in this process: ``workers=1``."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def _executor(executor: Any, workers: int | None, trial_args: Sequence[Any]) -> Iterator[Executor]:
    """The executor trials run on; ``trial_args`` (agent, oracle) name modules to preload."""
    if executor is not None:
        if isinstance(executor, Executor):
            yield executor
        elif hasattr(executor, "get_executor"):  # a distributed.Client
            yield executor.get_executor(pure=False)
        else:
            raise SeamtapeError(
                f"executor must be a concurrent.futures.Executor or a distributed.Client, "
                f"not {type(executor).__name__}"
            )
        return
    if workers is not None and workers <= 1:
        yield _InProcess()
        return
    check_sendable(trial_args)
    yield process_pool(workers or os.cpu_count() or 1, _modules(trial_args))


def check_sendable(things: Sequence[Any]) -> None:
    """Refuse, before any spend, what a process pool could not send to a worker."""
    for thing in things:
        # What the pool would send, checked up front (serialized only, never loaded): a
        # failure inside the pool's feeder thread can leave its shutdown waiting forever.
        try:
            ForkingPickler.dumps(thing)
        except Exception as exc:
            raise SeamtapeError(UNSENDABLE.format(exc=exc)) from None


_POOLS: dict[int, Any] = {}
_POOLS_LOCK = threading.Lock()


def process_pool(workers: int, preload: Sequence[str] = ()) -> Executor:
    """This process's pool of ``workers`` worker processes: made on first use, reused by every
    later blame call (process start-up is paid once) and shut down when the process exits.

    ``preload`` names modules the workers import before their first trial (the agent's
    module and its SDK); it takes effect when the first pool of the process is made.
    """
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is not None and not getattr(pool, "_broken", False):
            return pool
        methods = multiprocessing.get_all_start_methods()
        # A fresh server process to fork from: this process runs threads (the simulator, the
        # tape writer), and forking a threaded process can copy a held lock into the child.
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if context.get_start_method() == "forkserver":
            # Workers fork from the server with these already imported, instead of each
            # importing the agent's module (and its SDK) on its first trial.
            context.set_forkserver_preload(["seamtape.engine.blame", *preload])
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        if not _POOLS:
            atexit.register(shutdown_pools)
        _POOLS[workers] = pool
        return pool


def shutdown_pools() -> None:
    """Shut down the pools ``process_pool`` made (run at exit; safe to call any time)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


def _modules(things: Sequence[Any]) -> list[str]:
    """The importable modules that define these callables or ``pkg.mod:fn`` specs."""
    names = []
    for thing in things:
        name: str
        if isinstance(thing, str):
            name = thing.partition(":")[0] if _SPEC.match(thing) else ""
        else:
            name = str(getattr(thing, "__module__", None) or getattr(type(thing), "__module__", ""))
        if name and name != "__main__":
            names.append(name)
    return names
