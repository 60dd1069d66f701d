"""Transit checkpoints: one ``.pt`` file holding the instruction model (I2FET or the baseline),
the NED neutral model and the metadata that ties them to a head model and a text encoder.

File layout (a plain dict, loadable with ``torch.load(..., weights_only=True)``)::

    {"format": "flame_transit.transit", "version": 1,
     "kind": "i2fet" | "baseline",
     "config": {...model config...}, "state_dict": {...},
     "ned": {"config": {...}, "state_dict": {...}} | None,
     "meta": {"head_name", "head_kind", "expression_names", "expression_dim",
              "text_encoder", "text_dim", "library_version", "training_data",
              "train_config", "metrics", "created", "neutral_expression", "neutral_jaw", ...}}

Loading checks the file against the head and text encoder the caller uses and raises
:class:`~flame_transit.errors.CheckpointMismatchError` naming both sides when they differ.
"""

from __future__ import annotations

import io
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch

from ..errors import AssetError, CheckpointMismatchError
from ..io_utils import load_failure, user_path

__all__ = [
    "FORMAT",
    "BUNDLED_DIR",
    "BUNDLED_CHECKPOINTS",
    "TransitModel",
    "save_checkpoint",
    "load_checkpoint",
    "default_checkpoint_path",
    "load_default_model",
]

FORMAT = "flame_transit.transit"
VERSION = 1
#: the suffix of a checkpoint file: what `flame-transit train` writes and --model / load_checkpoint
#: are documented to take
CHECKPOINT_SUFFIX = ".pt"
BUNDLED_DIR = Path(__file__).resolve().parent / "data"
#: bundled checkpoints: (head kind, text encoder) -> file name
BUNDLED_CHECKPOINTS: Dict[Tuple[str, str], str] = {("open", "minilm-l6-v2"): "i2fet_open_minilm.pt"}

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class TransitModel:
    """A loaded checkpoint: the instruction model, the optional NED and the metadata.

    Attributes:
        model: :class:`~flame_transit.transit.i2fet.I2FET` or
            :class:`~flame_transit.transit.baseline.MotionCLIPBaseline` (in eval mode).
        ned: :class:`~flame_transit.transit.ned.NED` or None.
        meta: the checkpoint metadata (see the module docstring).
        kind: ``"i2fet"`` or ``"baseline"``.
        path: the file it came from, if any.
    """

    model: torch.nn.Module
    ned: Optional[torch.nn.Module]
    meta: Dict[str, Any]
    kind: str = "i2fet"
    path: Optional[str] = None
    _cache: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def head_name(self) -> str:
        return str(self.meta.get("head_name", ""))

    @property
    def text_encoder_name(self) -> str:
        return str(self.meta.get("text_encoder", ""))

    @property
    def text_dim(self) -> int:
        return int(self.meta.get("text_dim", 0))

    @property
    def expression_names(self) -> Tuple[str, ...]:
        return tuple(self.meta.get("expression_names", ()))

    @property
    def expression_dim(self) -> int:
        return int(self.meta.get("expression_dim", len(self.expression_names)))

    @property
    def conditioning(self) -> str:
        cfg = getattr(self.model, "cfg", None)
        return str(getattr(cfg, "conditioning", "segment"))

    def describe(self) -> str:
        return (
            f"{self.kind} checkpoint for head {self.head_name!r} (E={self.expression_dim}) and text "
            f"encoder {self.text_encoder_name!r} ({self.text_dim}-d)" + (f" from {self.path}" if self.path else "")
        )

    def check(self, head: Any = None, text_encoder: Any = None) -> None:
        """Raise :class:`CheckpointMismatchError` if ``head`` / ``text_encoder`` differ from the
        ones this model was trained for (``None`` = not checked)."""
        where = f" ({self.path})" if self.path else ""
        if head is not None:
            name = str(getattr(head, "name", head))
            if name != self.head_name:
                raise CheckpointMismatchError(
                    f"transit checkpoint{where} was trained for head {self.head_name!r}, but the head in use "
                    f"is {name!r}; train a model for this head (`flame-transit train --head ...`) or use "
                    "the matching head"
                )
            e = getattr(head, "num_expression", None)
            if e is not None and int(e) != self.expression_dim:
                raise CheckpointMismatchError(
                    f"transit checkpoint{where} produces {self.expression_dim} expression coefficients, the "
                    f"head {name!r} has {int(e)}"
                )
        if text_encoder is not None:
            name = str(getattr(text_encoder, "name", text_encoder))
            dim = getattr(text_encoder, "dim", None)
            if _canonical_encoder(name) != _canonical_encoder(self.text_encoder_name):
                raise CheckpointMismatchError(
                    f"transit checkpoint{where} was trained with text encoder {self.text_encoder_name!r} "
                    f"({self.text_dim}-d), but {name!r}" + (f" ({int(dim)}-d)" if dim else "")
                    + " was given; use the checkpoint's encoder (text_encoder=None) or a checkpoint "
                    "trained for this encoder"
                )
            if dim is not None and int(dim) != self.text_dim:
                raise CheckpointMismatchError(
                    f"transit checkpoint{where} expects {self.text_dim}-d text embeddings, the encoder "
                    f"{name!r} gives {int(dim)}-d"
                )

    def text_encoder(self) -> Any:
        """The checkpoint's text encoder (``flame_transit.text.get_text_encoder``), cached."""
        enc = self._cache.get("text_encoder")
        if enc is None:
            from ..text import get_text_encoder

            enc = get_text_encoder(self.text_encoder_name or None)
            self.check(text_encoder=enc)
            self._cache["text_encoder"] = enc
        return enc


def _canonical_encoder(name: str) -> str:
    try:
        from ..text.encoders import canonical_encoder_name

        return str(canonical_encoder_name(name))
    except Exception:  # text package missing or name unknown: compare as given
        return str(name).strip().lower()


def _library_version() -> str:
    from .. import __version__

    return str(__version__)


def save_checkpoint(
    path: PathLike,
    model: torch.nn.Module,
    *,
    meta: Dict[str, Any],
    ned: Optional[torch.nn.Module] = None,
    kind: Optional[str] = None,
    half: bool = False,
) -> Path:
    """Write a checkpoint atomically (temp file in the target folder, then ``os.replace``).

    Args:
        path: target ``.pt`` file.
        model: an I2FET or baseline model (``.cfg`` with ``to_dict``).
        meta: metadata; must name ``head_name``, ``expression_names``, ``text_encoder`` and
            ``text_dim``. ``library_version`` and ``created`` are filled in.
        ned: optional NED model stored alongside.
        kind: ``"i2fet"`` or ``"baseline"`` (default: from the model's class).
        half: store float tensors as float16 (half the size; restored to float32 on load).
    """
    from ..io_utils import atomic_write_bytes

    for key in ("head_name", "expression_names", "text_encoder", "text_dim"):
        if key not in meta:
            raise ValueError(f"checkpoint metadata needs {key!r}")
    if kind is None:
        kind = "baseline" if type(model).__name__ == "MotionCLIPBaseline" else "i2fet"

    def sd(m: torch.nn.Module) -> Dict[str, torch.Tensor]:
        out = {}
        for k, v in m.state_dict().items():
            v = v.detach().cpu().clone()
            if half and v.is_floating_point():
                v = v.half()
            out[k] = v
        return out

    meta = dict(meta)
    meta["expression_names"] = [str(x) for x in meta["expression_names"]]
    meta.setdefault("expression_dim", len(meta["expression_names"]))
    meta.setdefault("library_version", _library_version())
    meta.setdefault("created", time.strftime("%Y-%m-%d %H:%M:%S"))
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "config": model.cfg.to_dict(),
        "state_dict": sd(model),
        "ned": None if ned is None else {"config": ned.cfg.to_dict(), "state_dict": sd(ned)},
        "meta": meta,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


_LOADED: Dict[Tuple[str, float], TransitModel] = {}
_LOCK = threading.Lock()


def _build(kind: str, config: Dict[str, Any]) -> torch.nn.Module:
    if kind == "i2fet":
        from .i2fet import I2FET, I2FETConfig

        return I2FET(I2FETConfig.from_dict(config))
    if kind == "baseline":
        from .baseline import BaselineConfig, MotionCLIPBaseline

        return MotionCLIPBaseline(BaselineConfig.from_dict(config))
    raise AssetError(f"unknown transit model kind {kind!r} in checkpoint; expected 'i2fet' or 'baseline'")


def _float32(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}


_WHAT_TO_PASS = ("pass a .pt file written by `flame-transit train` (or tools/train_bundled.py), or no model "
                 "for the bundled one")


def load_checkpoint(path: PathLike, *, head: Any = None, text_encoder: Any = None) -> TransitModel:
    """Load a transit checkpoint (cached per file and modification time).

    Args:
        path: the ``.pt`` file.
        head: if given, the head in use (a :class:`~flame_transit.head.Head` or its name); a
            different head raises :class:`CheckpointMismatchError`.
        text_encoder: if given, the text encoder in use (object with ``name``/``dim`` or a name).

    Raises:
        AssetError: missing or unreadable file, or not a transit checkpoint.
        CheckpointMismatchError: head or text encoder mismatch.
    """
    p = user_path(os.fspath(path))
    if not p.is_file():
        raise AssetError(f"transit checkpoint not found: {p}; train one with `flame-transit train --out {p.name}`")
    key = (str(p.resolve()), p.stat().st_mtime)
    with _LOCK:
        tm = _LOADED.get(key)
    if tm is None:
        try:
            payload = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise AssetError(f"{p} is not a readable transit checkpoint ({load_failure(exc)}); {_WHAT_TO_PASS}") from exc
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise AssetError(f"{p} is not a flame_transit transit checkpoint (format {found!r}); {_WHAT_TO_PASS}")
        if int(payload.get("version", 0)) > VERSION:
            raise AssetError(f"{p} was written by a newer flame_transit (checkpoint version {payload['version']}); upgrade flame_transit")
        kind = str(payload.get("kind", "i2fet"))
        try:
            model = _build(kind, payload["config"])
            model.load_state_dict(_float32(payload["state_dict"]))
            ned = None
            if payload.get("ned"):
                from .ned import NED, NEDConfig

                ned = NED(NEDConfig.from_dict(payload["ned"]["config"]))
                ned.load_state_dict(_float32(payload["ned"]["state_dict"]))
                ned.eval()
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise AssetError(f"{p}: checkpoint contents do not match the model code ({exc})") from exc
        model.eval()
        tm = TransitModel(model=model, ned=ned, meta=dict(payload["meta"]), kind=kind, path=str(p))
        with _LOCK:
            _LOADED[key] = tm
    tm.check(head=head, text_encoder=text_encoder)
    return tm


def default_checkpoint_path(head: Any = None, text_encoder: Any = None) -> Path:
    """The bundled checkpoint for a head (default: the open head) and text encoder.

    Raises:
        CheckpointMismatchError: no bundled checkpoint fits (e.g. a FLAME head or CLIP); the
            message says how to train one.
    """
    if isinstance(text_encoder, str):  # an unknown name is a typo, not a missing model
        from ..text.encoders import check_encoder_name

        check_encoder_name(text_encoder)
    kind = str(getattr(head, "kind", "open")) if head is not None else "open"
    enc = _canonical_encoder(str(getattr(text_encoder, "name", text_encoder))) if text_encoder is not None else "minilm-l6-v2"
    name = BUNDLED_CHECKPOINTS.get((kind, enc))
    if name is None:
        raise CheckpointMismatchError(
            f"no bundled transit model for a {kind!r} head with text encoder {enc!r} (bundled: open head + "
            "minilm-l6-v2); train one with `flame-transit train --head ... --text-encoder ... --out model.pt` "
            "and pass model='model.pt'"
        )
    p = BUNDLED_DIR / name
    if not p.is_file():
        raise AssetError(f"bundled transit checkpoint missing: {p}; rebuild it with `python tools/train_bundled.py` or reinstall flame_transit")
    return p


def load_default_model(head: Any = None, text_encoder: Any = None) -> TransitModel:
    """The bundled model, checked against ``head`` / ``text_encoder`` when given."""
    return load_checkpoint(default_checkpoint_path(head, text_encoder), head=head, text_encoder=text_encoder)
