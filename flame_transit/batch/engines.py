"""Where batch rows run: this machine, a Dask cluster or a Ray cluster, behind one small interface.

An engine maps a picklable function over items and yields the results as they finish
(:meth:`Engine.map_unordered`). The function runs in a worker process; anything it keeps in
:func:`~flame_transit.batch.worker.worker_cache` stays loaded for the next item on that worker.

* ``local``: this process (``workers=1``, today's behaviour) or a pool of ``workers`` spawned
  processes on this machine.
* ``dask``: ``pip install "flame_transit[dask]"``. Without ``address`` a local cluster of
  ``workers`` processes on 127.0.0.1; with ``address`` (``tcp://scheduler:8786``) an existing
  Dask scheduler.
* ``ray``: ``pip install "flame_transit[ray]"``. Without ``address`` a local Ray instance on
  127.0.0.1 with ``workers`` CPUs; with ``address`` (``ray://head:10001`` or ``auto``) an
  existing cluster. Ray's usage statistics are switched off unless the environment says
  otherwise.

Example:
    >>> with open_engine("local") as engine:
    ...     sorted(engine.map_unordered(abs, [-2, 1, -3]))
    [1, 2, 3]
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Callable, Iterable, Iterator, List, Optional

from ..errors import InputError
from .worker import THREAD_VARS, limit_threads

__all__ = ["ENGINES", "Engine", "LocalEngine", "DaskEngine", "RayEngine", "check_engine", "open_engine"]

log = logging.getLogger(__name__)

#: engine names accepted by ``--engine``
ENGINES = ("local", "dask", "ray")
#: how long to try reaching a Dask scheduler given by ``address``
CONNECT_TIMEOUT = "30s"
_EXTRA = {"dask": ("distributed", "dask"), "ray": ("ray", "ray")}  # engine -> (module, extra)


def check_engine(name: str, address: Optional[str] = None, workers: Optional[int] = None) -> str:
    """Validate an engine choice before any work; returns the lower-cased name.

    Raises:
        InputError: unknown name, an address for the local engine, a bad worker count, or the
            engine's extra is not installed (the message gives the ``pip install`` line).
    """
    key = str(name).strip().lower()
    if key not in ENGINES:
        raise InputError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers must be a positive whole number, got {workers!r}")
    if key == "local":
        if address:
            raise InputError("--address names a Dask or Ray cluster; add --engine dask or --engine ray")
        return key
    if address is not None and not str(address).strip():
        raise InputError("--address is empty; give e.g. tcp://scheduler:8786 (dask) or ray://head:10001 (ray)")
    import importlib.util

    module, extra = _EXTRA[key]
    if importlib.util.find_spec(module) is None:
        raise InputError(f"the {key} engine needs its extra: pip install \"flame_transit[{extra}]\"")
    return key


Lost = Callable[[Any, BaseException], Any]


class Engine:
    """Runs ``fn(item)`` for each item in worker processes, yielding results as they finish.

    ``map_unordered(fn, items, lost=None)``: when the process running an item dies (killed for
    memory, a crash in native code) and the engine gives up on it, ``lost(item, error)`` is
    yielded in its place; without ``lost`` the error is raised. Exceptions raised *by* ``fn``
    are always raised.
    """

    name = "engine"
    #: how many rows run side by side (for progress and benchmarks)
    workers = 1

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any], lost: Optional[Lost] = None) -> Iterator[Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the cluster/pool this engine started (never an external cluster)."""


def _threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class LocalEngine(Engine):
    """This process (``workers=1``) or a pool of spawned processes on this machine."""

    name = "local"

    def __init__(self, workers: Optional[int] = None) -> None:
        self.workers = 1 if workers is None else int(workers)

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any], lost: Optional[Lost] = None) -> Iterator[Any]:
        items = list(items)  # (a pool process that dies is replaced by multiprocessing; not reported)
        if self.workers <= 1 or len(items) <= 1:
            for item in items:
                yield fn(item)
            return
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        n = min(self.workers, len(items))
        with ctx.Pool(n, initializer=limit_threads, initargs=(_threads_per_worker(n),)) as pool:
            yield from pool.imap_unordered(fn, items, chunksize=1)


class DaskEngine(Engine):
    """A Dask ``distributed`` client: a local cluster on 127.0.0.1, or the scheduler at ``address``."""

    name = "dask"

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None) -> None:
        from dask.distributed import Client, LocalCluster

        self._cluster = None
        if address:
            try:
                self._client = Client(address, timeout=CONNECT_TIMEOUT)
            except (OSError, ValueError) as exc:  # refused, timed out, malformed
                raise InputError(f"cannot reach the Dask scheduler at {address!r} ({type(exc).__name__}: {exc}); "
                                 "start it with `dask scheduler` or check --address") from None
        else:
            n = workers or 2
            threads = str(_threads_per_worker(n))  # n processes share this machine's cores
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                         host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                         env={v: threads for v in THREAD_VARS})
            self._client = Client(self._cluster)
        self.workers = max(1, sum(self._client.nthreads().values()))

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any], lost: Optional[Lost] = None) -> Iterator[Any]:
        from dask.distributed import KilledWorker, as_completed

        items = list(items)
        if not items:
            return
        futures = self._client.map(fn, items, pure=False)
        item_of = {f.key: item for f, item in zip(futures, items)}
        try:
            for future in as_completed(futures):
                try:
                    yield future.result()
                except KilledWorker as exc:  # the scheduler gave up after workers died running it
                    if lost is None:
                        raise
                    yield lost(item_of[future.key], exc)
        finally:  # interrupted or failed: stop what has not run yet
            self._client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _ray_call(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


class RayEngine(Engine):
    """Ray tasks: a local Ray instance on 127.0.0.1, or the cluster at ``address``."""

    name = "ray"

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reports to the internet
        import ray

        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            if address:
                try:
                    ray.init(address=address, log_to_driver=False)
                except (ConnectionError, OSError, ValueError) as exc:
                    raise InputError(f"cannot reach the Ray cluster at {address!r} ({type(exc).__name__}: {exc}); "
                                     "start it with `ray start --head` or check --address") from None
            else:
                ray.init(num_cpus=workers or 2, include_dashboard=False, log_to_driver=False,
                         _node_ip_address="127.0.0.1")
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_call)

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any], lost: Optional[Lost] = None) -> Iterator[Any]:
        ray = self._ray
        from ray.exceptions import NodeDiedError, OutOfMemoryError, WorkerCrashedError

        fn_ref = ray.put(fn)
        items = list(items)
        pending: List[Any] = [self._remote.remote(fn_ref, item) for item in items]
        item_of = {ref: item for ref, item in zip(pending, items)}
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    yield ray.get(done[0])
                except (WorkerCrashedError, NodeDiedError, OutOfMemoryError) as exc:
                    if lost is None:
                        raise
                    yield lost(item_of[done[0]], exc)
        finally:
            for ref in pending:
                ray.cancel(ref)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


@contextlib.contextmanager
def open_engine(name: str = "local", *, address: Optional[str] = None, workers: Optional[int] = None) -> Iterator[Engine]:
    """An :class:`Engine` by name, closed (its local cluster stopped) on exit.

    Args:
        name: ``"local"``, ``"dask"`` or ``"ray"`` (see the module docstring).
        address: an existing cluster (Dask scheduler / Ray head); ``None`` starts a local one.
        workers: processes for ``local`` (default 1 = this process) and for a local cluster
            (default 2); ignored with ``address`` (the cluster decides).
    """
    key = check_engine(name, address, workers)
    engine: Engine
    if key == "local":
        engine = LocalEngine(workers)
    elif key == "dask":
        engine = DaskEngine(address, workers)
    else:
        engine = RayEngine(address, workers)
    log.info("batch engine %s with %d worker(s)%s", key, engine.workers, f" at {address}" if address else "")
    try:
        yield engine
    finally:
        engine.close()
