"""Small tensor and matrix work on one thread.

A head forward of one open-head frame takes 0.6 ms on one torch thread and 17-32 ms (median)
on two on a busy 2-core machine (measured 2026-12-04, this repo's CI machine): waking the
second thread costs more than the work. :func:`one_thread` runs a block on one torch thread
(and, with ``blas=True``, one BLAS thread via threadpoolctl when installed); :data:`SMALL_WORK`
says which batched forwards count as small (:meth:`flame_transit.head.Head.forward` decides by it).

Example:
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with one_thread():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

__all__ = ["SMALL_WORK", "one_thread"]

#: frames x vertices below which a head forward runs on one thread (60 open-head frames are
#: 35k; 60 FLAME frames, 301k, gain from a second thread)
SMALL_WORK = 100_000

_BLAS: Any = None
_BLAS_LOCK = threading.Lock()


def _blas_controller() -> Any:
    """threadpoolctl's controller (built once: it inspects the loaded libraries), or False."""
    global _BLAS
    with _BLAS_LOCK:
        if _BLAS is None:
            try:
                from threadpoolctl import ThreadpoolController

                _BLAS = ThreadpoolController()
            except ImportError:  # pragma: no cover - optional
                _BLAS = False
        return _BLAS


@contextlib.contextmanager
def one_thread(blas: bool = False) -> Iterator[None]:
    """Run the block on one torch thread (and one BLAS thread with ``blas``); the thread
    counts are restored after it.

    Meant for one thread at a time. torch keeps its count per thread (OpenMP), but
    ``set_num_threads`` also sets the default that a thread takes at its first torch call, and
    the BLAS limit (threadpoolctl) is process-wide: blocks overlapping in several threads can
    leave another thread, or BLAS, on one thread (slower, never wrong)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        controller = _blas_controller() if blas else False
        if controller:
            with controller.limit(limits=1, user_api="blas"):
                yield
        else:
            yield
    finally:
        torch.set_num_threads(threads)
