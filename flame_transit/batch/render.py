"""The ``render`` / ``export`` batch task: one CSV row → one clip, with the worker's models.

:func:`render_job` is what a worker runs for a row: :func:`~flame_transit.api.animate` with the
head, transit model and text encoder this worker loaded for the first row
(:func:`worker_models`, kept by :func:`~flame_transit.batch.worker.worker_cache`), then
``Animation.save`` (atomic: a temporary file beside the target, then ``os.replace``).
MediaPipe's Face Mesh graph is built once per process by the encoder itself (on the first row
with a photo) and reused; each row reports the ids of the objects it used.
:func:`run_render_batch` is the whole ``render --batch`` / ``export --batch`` command body.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from .runner import BatchReport, run_batch
from .worker import worker_cache

__all__ = ["WorkerModels", "worker_models", "render_job", "run_render_batch"]


@dataclass
class WorkerModels:
    """What a worker keeps between rows: the head, the transit model and its text encoder."""

    head: Any
    transit: Any
    text_encoder: Any


def _load_models(head: Optional[str], text_encoder: Optional[str], model: Optional[str]) -> WorkerModels:
    from ..head import load_head
    from ..transit import resolve_model

    head_obj = load_head(head)
    names = tuple(head_obj.expression_names)
    if model is None and not (names and all(str(n).upper().startswith("AU") for n in names)):
        # a FLAME head with the bundled AU model: anchors go through the head's AU -> FLAME map
        # (animate's model=None path); its landmarks and map are found once per worker here
        from ..data.flame_space import au_basis_for

        au_basis_for(head_obj)
        bundled = resolve_model(None, text_encoder=text_encoder)
        return WorkerModels(head=head_obj, transit=None, text_encoder=bundled.text_encoder())
    transit = resolve_model(model, head=head_obj, text_encoder=text_encoder)
    return WorkerModels(head=head_obj, transit=transit, text_encoder=transit.text_encoder())


def worker_models(head: Optional[str] = None, text_encoder: Optional[str] = None,
                  model: Optional[str] = None) -> WorkerModels:
    """The models for these options, loaded once per worker process.

    Example:
        >>> worker_models() is worker_models()
        True
    """
    return worker_cache(("models", head, text_encoder, model), functools.partial(_load_models, head, text_encoder, model))


def _face_mesh_in_use() -> Any:
    """MediaPipe's Face Mesh graph that encode() built and keeps in this process (or None)."""
    from ..encode import landmarks

    return landmarks._MESHES.get(landmarks.DEFAULT_MAX_FACES)


def render_job(job: Dict[str, Any], options: Dict[str, Any], extras: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Render/export one row on this worker.

    Args:
        job: ``image`` (path or None), ``instruction``, ``out``; optional ``save_options``
            for :meth:`~flame_transit.api.Animation.save`.
        options: keyword arguments of :func:`~flame_transit.api.animate`; ``head``,
            ``text_encoder`` and ``model`` name the worker's models.
        extras: optional ``{"sheet": png, "plot": png}`` written after the clip.

    Returns:
        ``frames``, ``describe`` (labels, duration, head) and ``models``: ids of the model
        objects used (the same on every row of a worker).
    """
    from ..api import animate

    opts = dict(options)
    models = worker_models(opts.pop("head", None), opts.pop("text_encoder", None), opts.pop("model", None))
    anim = animate(job.get("image"), job.get("instruction") or "", head=models.head,
                   text_encoder=models.text_encoder, model=models.transit, **opts)
    anim.save(job["out"], **job.get("save_options", {}))  # e.g. layout="deca" (export --layout)
    mesh = _face_mesh_in_use() if job.get("image") is not None else None
    for kind, target in (extras or {}).items():
        if target and kind == "sheet":
            anim.save(target)
        elif target and kind == "plot":
            anim.save_plot(target)
    ids = [id(models.head), id(models.transit), id(models.text_encoder)] + ([id(mesh)] if mesh is not None else [])
    return {"frames": anim.num_frames, "describe": anim.describe(), "models": ids}


def run_render_batch(jobs: Sequence[Dict[str, Any]], options: Dict[str, Any], *,
                     extras: Optional[Dict[str, str]] = None, **batch_options: Any) -> BatchReport:
    """Run a render/export batch, print one line per row and the failures (the CLI's output).

    Args:
        jobs: ``row``, ``image``, ``instruction``, ``out`` per row.
        options: keyword arguments of :func:`~flame_transit.api.animate` (see :func:`render_job`).
        extras: ``{"sheet": png, "plot": png}`` written after each clip.
        **batch_options: ``engine``, ``address``, ``workers``, ``resume``, ``report``,
            ``progress`` of :func:`~flame_transit.batch.runner.run_batch`.
    """

    def show(entry: Dict[str, Any]) -> None:
        if entry["status"] == "skipped":
            print(f"row {entry['row']}: {entry['out']} exists, skipped (--resume)")
        elif entry["status"] == "failed":
            print(f"row {entry['row']}: failed: {entry['error']}", file=sys.stderr)
        else:
            redone = f"; redone: {entry['redone']}" if entry.get("redone") else ""
            print(f"wrote {entry['out']}  ({entry['frames']} frames, {entry['describe']}){redone}")

    task = functools.partial(render_job, options=dict(options, progress=False), extras=extras)
    result = run_batch(jobs, task, on_result=show, **batch_options)
    failed: List[Dict[str, Any]] = sorted(result.failed, key=lambda r: r["row"])
    if failed:
        print(f"\n{len(failed)} of {len(result.rows)} rows failed:", file=sys.stderr)
        for r in failed:
            print(f"  row {r['row']} ({r.get('image') or 'bundled head'}): {r['error']}", file=sys.stderr)
    return result
