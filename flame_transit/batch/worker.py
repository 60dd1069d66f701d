"""Per-process state of a batch worker: who it is and the models it keeps between rows.

A worker is a long-lived process (this process for the ``local`` engine, a Dask worker, a Ray
worker process); rows it runs share what :func:`worker_cache` built the first time, so a head,
a text encoder and a transit model are loaded once per worker, not once per row (MediaPipe's
Face Mesh graph is kept per process by the encoder itself). :func:`load_counts` says how often each entry was built in this process (a batch report
carries it so that reuse can be checked from the driver).

Example:
    >>> calls = []
    >>> build = lambda: calls.append(1) or "model"
    >>> worker_cache("doctest-model", build), worker_cache("doctest-model", build), len(calls)
    ('model', 'model', 1)
    >>> load_counts()["doctest-model"]
    1
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any, Callable, Dict, Hashable

__all__ = ["worker_cache", "load_counts", "worker_id", "limit_threads"]

#: environment variables that cap BLAS/OpenMP threads
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_CACHE: Dict[Hashable, Any] = {}
_LOADS: Dict[str, int] = {}
_LOCK = threading.RLock()


def worker_cache(key: Hashable, build: Callable[[], Any]) -> Any:
    """The object stored under ``key`` in this process, built by ``build()`` on first use.

    Args:
        key: hashable identity of the object (e.g. ``("models", head, encoder, checkpoint)``).
        build: zero-argument callable; runs at most once per key and process (a failure is not
            cached, so the next row tries again).
    """
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = build()
            name = key[0] if isinstance(key, tuple) and key else key
            _LOADS[str(name)] = _LOADS.get(str(name), 0) + 1
        return _CACHE[key]


def load_counts() -> Dict[str, int]:
    """How many times each kind of cached object was built in this process (a copy)."""
    with _LOCK:
        return dict(_LOADS)


def worker_id() -> str:
    """``host:pid`` of this process: names the worker in a batch report."""
    return f"{socket.gethostname()}:{os.getpid()}"


def limit_threads(threads: int) -> None:
    """Use at most ``threads`` BLAS/torch threads in this process (one row per core on a
    worker that runs several rows side by side)."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    try:
        import torch

        torch.set_num_threads(int(threads))
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
