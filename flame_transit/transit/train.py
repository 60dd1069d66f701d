"""Training the transit models: I2FET (and its ablations), the MotionCLIP-style baseline, NED.

:func:`train` takes a :class:`TrainConfig` and returns the checkpoint path. The protocol follows
the paper: Adam, batch 128, 10 % of the data held out for testing, 10 % of the rest for
validation; the model with the lowest validation loss is kept. The paper trains 200 epochs on
CK+; on the synthetic FACS set the losses and the generation accuracy stop improving well before
that, so the default here is :data:`DEFAULT_EPOCHS` (the bundled checkpoint's script states
its own numbers).

Text: every training row (an expression with an emotion label) is paired, per batch, with a
random *text item* of its label from a pool of training instructions (templates and emotion
words of the training split of :mod:`flame_transit.text.templates`, see
:mod:`flame_transit.transit.conditioning`): the segment phrase, the full instruction and the
segment's position. Held-out templates and words never enter training.

Runs unchanged under ``torchrun`` (``WORLD_SIZE > 1``): the process group is initialised from
the environment, rows are sharded with ``DistributedSampler``, gradients are averaged by
``DistributedDataParallel`` and rank 0 writes the checkpoint.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import InputError
from ..expressions import is_action_unit_space
from ..head.open_head import EXPRESSION_GAIN as _OPEN_HEAD_GAIN
from .baseline import BaselineConfig
from .checkpoint import CHECKPOINT_SUFFIX
from .i2fet import I2FETConfig
from .ifed import IFEDConfig

__all__ = ["TrainConfig", "train", "build_model", "train_ned", "DEFAULT_EPOCHS", "MODEL_KINDS"]

log = logging.getLogger(__name__)

DEFAULT_EPOCHS = 60
#: the text conditioning of trained models (:class:`~flame_transit.transit.i2fet.I2FETConfig` defaults to the paper's)
DEFAULT_CONDITIONING = "segment"
#: ``model`` values of :class:`TrainConfig`
MODEL_KINDS = ("i2fet", "no_ifed", "no_vertex", "baseline")


@dataclass
class TrainConfig:
    """Everything a training run needs (JSON friendly: plain types).

    Attributes:
        out: checkpoint path to write (a ``.pt`` file, :data:`~.checkpoint.CHECKPOINT_SUFFIX`).
        model: ``"i2fet"`` (IFED + vertex loss), ``"no_ifed"`` (ablation: decoder condition =
            MLP of the text), ``"no_vertex"`` (ablation: no vertex loss) or ``"baseline"``
            (MotionCLIP-style text-aligned autoencoder).
        head: head model (None = bundled open head; a FLAME file path; ``"flame"``).
        text_encoder: text encoder name (None = default offline MiniLM).
        dataset: dataset ``.npz`` (None = synthetic FACS data for the head).
        samples_per_emotion: synthetic rows per class when ``dataset`` is None.
        intensity_min, intensity_max: range of the synthetic rows' overall intensity. Centred
            near 1.0 so an instruction without an intensity word yields a clearly readable,
            prototype-strength expression (AU value 1.0 = strong); intensity words then scale
            it ("slightly" < default < "very").
        epochs, batch_size, lr, weight_decay: optimisation (Adam).
        seed: seeds data split, initialisation, batches and text pairing.
        test_fraction, val_fraction: the paper's 10 % / 10 %.
        kl_weight: β; ``kl_warmup`` = fraction of epochs over which β ramps up linearly.
        expr_weight, pose_weight, vertex_weight: loss weights (vertex 0 = no vertex loss).
        vertex_subset: vertices used by the vertex loss.
        segment_text: ``"canonical"`` (the label's canonical word) or ``"raw"`` (the segment's
            own words); see :mod:`flame_transit.transit.conditioning`.
        context_dropout: probability of hiding the full-instruction embedding per row.
        text_pool_size: training instructions generated for text pairing.
        i2fet: the I2FET model (:class:`~flame_transit.transit.i2fet.I2FETConfig`, with its IFED
            sizes in ``i2fet.ifed``; the paper's best IFED: 2/1/1 layers) and the text
            conditioning of every model kind (``i2fet.conditioning``: ``"segment"`` (default),
            ``"segment+instruction"``, ``"instruction+position"``). ``expr_dim``, ``text_dim``
            and ``use_ifed`` come from the data, the text encoder and ``model``. A dict is
            accepted (JSON configs: ``{"i2fet": {"z_expr": 8, "ifed": {"d_model": 32}}}``).
        baseline: the MotionCLIP-style model (:class:`~flame_transit.transit.baseline.BaselineConfig`).
        ned, ned_epochs, ned_style_std: also train the NED (stored in the same checkpoint);
            ``ned_style_std`` = per-subject resting-style offsets added to NED pairs, as a
            fraction of the expression std.
        eval_every: epochs between validation passes.
        num_threads: torch intra-op threads (0 = leave as is; 1 is fastest for these small
            models, more threads only add contention).
        progress: tqdm progress bars.
        half: store float16 weights.
        description: free text stored in the checkpoint's training-data description.
    """

    out: str = "i2fet.pt"
    model: str = "i2fet"
    head: Optional[str] = None
    text_encoder: Optional[str] = None
    dataset: Optional[str] = None
    samples_per_emotion: int = 400
    intensity_min: float = 0.75
    intensity_max: float = 1.15
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    test_fraction: float = 0.1
    val_fraction: float = 0.1
    kl_weight: float = 0.05
    kl_warmup: float = 0.3
    expr_weight: float = 1.0
    pose_weight: float = 1.0
    vertex_weight: float = 10.0
    vertex_subset: int = 512
    segment_text: str = "canonical"
    context_dropout: float = 0.3
    text_pool_size: int = 3000
    i2fet: I2FETConfig = field(default_factory=lambda: I2FETConfig(conditioning=DEFAULT_CONDITIONING))
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    ned: bool = True
    ned_epochs: int = 40
    ned_style_std: float = 0.15
    eval_every: int = 1
    num_threads: int = 1
    progress: bool = True
    half: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.i2fet, dict):
            self.i2fet = _nested_config(I2FETConfig, {"conditioning": DEFAULT_CONDITIONING, **self.i2fet}, "i2fet", _DATA_FIELDS)
        if isinstance(self.baseline, dict):
            self.baseline = _nested_config(BaselineConfig, self.baseline, "baseline", _DATA_FIELDS)
        if self.model not in MODEL_KINDS:
            raise InputError(f"TrainConfig.model must be one of {MODEL_KINDS}, got {self.model!r}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise InputError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        # checked here, at the door: a wrong name used to surface only after training, or never
        out = Path(str(self.out))
        if out.suffix.lower() != CHECKPOINT_SUFFIX:
            name = (out.name.split(".")[0] or "model") + CHECKPOINT_SUFFIX
            raise InputError(f"the checkpoint is a {CHECKPOINT_SUFFIX} file (what --model and load_checkpoint take), "
                             f"got out={str(self.out)!r}; name it e.g. {str(out.with_name(name)) if out.name else name!r}")

    @property
    def conditioning(self) -> str:
        """What text the model sees (``i2fet.conditioning``; the baseline reads it too)."""
        return self.i2fet.conditioning

    def to_dict(self) -> dict:
        """Plain types (JSON); the nested model configs without the fields training derives."""
        d = asdict(self)
        for key in _DATA_FIELDS:
            d["i2fet"].pop(key, None)
            d["baseline"].pop(key, None)
        for key in _SYNCED_IFED_FIELDS:
            d["i2fet"]["ifed"].pop(key, None)
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        """A config from a JSON-style dict; nested model configs may be dicts."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            moved = sorted(set(unknown) & (_field_names(I2FETConfig) | _field_names(IFEDConfig)))
            hint = (f"; model sizes are nested: {{\"i2fet\": {{...}}}} ({', '.join(_field_names(I2FETConfig) - _DATA_FIELDS)}), "
                    f"IFED sizes in {{\"i2fet\": {{\"ifed\": {{...}}}}}}" if moved else "")
            raise InputError(f"unknown training config keys {unknown}; known keys: {sorted(known)}{hint}")
        return cls(**d)


#: model-config fields set from the data, the text encoder and ``TrainConfig.model``
_DATA_FIELDS = frozenset({"expr_dim", "text_dim", "use_ifed"})
#: IFED fields kept in sync with the I2FET config (see ``I2FETConfig.__post_init__``)
_SYNCED_IFED_FIELDS = frozenset({"text_dim", "z_expr", "z_pose", "max_positions", "use_context"})


def _field_names(cls: Any) -> set:
    return {f.name for f in fields(cls)}


def _nested_config(cls: Any, d: Dict[str, Any], where: str, fixed: frozenset) -> Any:
    """``cls(**d)`` from a dict, refusing unknown keys and keys the training sets itself."""
    allowed = _field_names(cls) - fixed
    bad = sorted(set(d) - allowed)
    if bad:
        raise InputError(f"training config {where}: unknown or derived keys {bad}; settable: {sorted(allowed)}")
    d = dict(d)
    if cls is I2FETConfig and isinstance(d.get("ifed"), dict):
        d["ifed"] = _nested_config(IFEDConfig, d["ifed"], f"{where}.ifed", _SYNCED_IFED_FIELDS)
    try:
        return cls(**d)
    except (TypeError, ValueError) as exc:
        raise InputError(f"training config {where}: {exc}") from None


# -- pieces ----------------------------------------------------------------------------------


def build_model(cfg: TrainConfig, expr_dim: int, text_dim: int) -> torch.nn.Module:
    """The (untrained) model a config describes."""
    if cfg.model == "baseline":
        from .baseline import MotionCLIPBaseline

        return MotionCLIPBaseline(replace(cfg.baseline, expr_dim=expr_dim, text_dim=text_dim))
    from .i2fet import I2FET

    # a copy: I2FETConfig syncs its IFED config in place
    return I2FET(replace(copy.deepcopy(cfg.i2fet), expr_dim=expr_dim, text_dim=text_dim, use_ifed=cfg.model != "no_ifed"))


class _Dist:
    """torch.distributed set-up from the environment (torchrun); a no-op for one process."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.started = False
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                backend = "nccl" if torch.cuda.is_available() else "gloo"
                dist.init_process_group(backend=backend)
                self.started = True
            self.rank = dist.get_rank()
            self.world = dist.get_world_size()

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self) -> torch.device:
        if self.enabled and torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def all_mean(self, value: float) -> float:
        if not self.enabled:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device=self.device())
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def close(self) -> None:
        if self.started:
            import torch.distributed as dist

            dist.destroy_process_group()


def _tqdm(iterable: Any, enabled: bool, **kw: Any) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


class _TextSampler:
    """Draws, per row, a random text item of the row's label (vectorised)."""

    def __init__(self, pool: Any, embeddings: torch.Tensor, num_labels: int, device: torch.device,
                 instruction_as_text: bool = False) -> None:
        self.emb = embeddings.to(device)
        self.instruction_as_text = instruction_as_text
        self.seg = torch.as_tensor(pool.seg, dtype=torch.long, device=device)
        self.ctx = torch.as_tensor(pool.ctx, dtype=torch.long, device=device)
        self.pos = torch.as_tensor(pool.pos, dtype=torch.long, device=device)
        labels = np.asarray(pool.label)
        lists = [np.flatnonzero(labels == l) for l in range(num_labels)]
        width = max(1, max(len(x) for x in lists))
        table = np.zeros((num_labels, width), dtype=np.int64)
        counts = np.zeros(num_labels, dtype=np.int64)
        for l, items in enumerate(lists):
            counts[l] = len(items)
            if len(items):
                table[l, : len(items)] = items
        self.table = torch.as_tensor(table, device=device)
        self.counts = torch.as_tensor(counts, device=device)
        self.missing = [l for l in range(num_labels) if counts[l] == 0]

    def __call__(self, labels: torch.Tensor, generator: torch.Generator, context_dropout: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u = torch.rand(labels.shape[0], generator=generator).to(labels.device)
        n = self.counts[labels].clamp_min(1)
        item = self.table[labels, (u * n).long().clamp_max(n - 1)]
        ctx = self.emb[self.ctx[item]]
        text = ctx if self.instruction_as_text else self.emb[self.seg[item]]
        if context_dropout > 0:
            keep = (torch.rand(labels.shape[0], generator=generator) >= context_dropout).to(ctx)
            ctx = ctx * keep.to(ctx.device)[:, None]
        return text, ctx, self.pos[item]


def _loader(tensors: Sequence[torch.Tensor], batch: int, seed: int, dist: _Dist, shuffle: bool = True) -> Tuple[Any, Any]:
    from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler, TensorDataset

    ds = TensorDataset(*tensors)
    if dist.enabled:
        sampler = DistributedSampler(ds, num_replicas=dist.world, rank=dist.rank, shuffle=shuffle, seed=seed)
    elif shuffle:
        sampler = RandomSampler(ds, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(ds)
    return DataLoader(ds, batch_size=batch, sampler=sampler, drop_last=False), sampler


def _seed_all(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _tensors(ds: Any, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.as_tensor(ds.expression, dtype=torch.float32, device=device),
        torch.as_tensor(ds.jaw_pose, dtype=torch.float32, device=device),
        torch.as_tensor(ds.labels, dtype=torch.long, device=device),
    )


def _load_dataset(cfg: TrainConfig, head: Any) -> Any:
    from ..data.dataset import ExpressionDataset

    if cfg.dataset:
        ds = ExpressionDataset.load(cfg.dataset)
        ds.check_head(head)
        return ds
    from ..data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(head, samples_per_emotion=cfg.samples_per_emotion, seed=cfg.seed,
                                  intensity_range=(cfg.intensity_min, cfg.intensity_max))


def _step_losses(model: torch.nn.Module, kind: str, batch: Tuple[torch.Tensor, ...], texts: Tuple[torch.Tensor, ...],
                 weights: Any, kl_scale: float, vertex_layer: Any, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    expr, jaw = batch[0], batch[1]
    text, ctx, pos = texts
    if kind == "baseline":
        from .baseline import baseline_loss

        out = model(expr, jaw)
        core = model.module if hasattr(model, "module") else model
        return baseline_loss(core, out, expr, jaw, text)
    from .i2fet import cvae_loss

    out = model(expr, jaw, text, ctx, pos, generator=generator)
    core = model.module if hasattr(model, "module") else model
    return cvae_loss(core, out, expr, jaw, weights, kl_scale, vertex_layer)


# -- the run ---------------------------------------------------------------------------------


def train(config: TrainConfig, *, dataset: Any = None, head: Any = None, text_encoder: Any = None) -> Path:
    """Train the model a config describes and write its checkpoint.

    Args:
        config: the run (:class:`TrainConfig`).
        dataset: an :class:`~flame_transit.data.dataset.ExpressionDataset` to use instead of
            ``config.dataset`` / synthetic data.
        head: a loaded head to use instead of ``config.head``.
        text_encoder: a text encoder object to use instead of ``config.text_encoder``.

    Returns:
        the checkpoint path (written by rank 0).
    """
    from ..head import load_head
    from ..text import get_text_encoder
    from .checkpoint import save_checkpoint
    from .conditioning import build_text_pool, embed_pool
    from .i2fet import LossWeights
    from .layers import VertexLayer

    from ..io_utils import prepare_output_path

    cfg = config
    prepare_output_path(cfg.out)  # an unwritable place fails now, not after the training
    t_start = time.perf_counter()
    threads_before = torch.get_num_threads()
    if cfg.num_threads > 0:
        torch.set_num_threads(int(cfg.num_threads))
    dist = _Dist()
    device = dist.device()
    try:
        _seed_all(cfg.seed)
        head = load_head(head if head is not None else cfg.head)
        encoder = text_encoder if text_encoder is not None else get_text_encoder(cfg.text_encoder)
        ds = dataset if dataset is not None else _load_dataset(cfg, head)
        if int(ds.expression.shape[1]) != head.num_expression:
            raise InputError(f"dataset has {ds.expression.shape[1]} expression coefficients, head {head.name!r} has {head.num_expression}")
        splits = ds.split(test=cfg.test_fraction, val=cfg.val_fraction, seed=cfg.seed)
        label_names = tuple(ds.label_names)

        pool = build_text_pool(label_names, seed=cfg.seed, size=cfg.text_pool_size, split="train",
                               segment_text=cfg.segment_text)
        uses_context = cfg.conditioning == "instruction+position" or (
            cfg.model != "baseline" and cfg.conditioning == "segment+instruction")
        emb = embed_pool(pool, encoder, contexts=uses_context)
        sampler_text = _TextSampler(pool, emb, len(label_names), device,
                                    instruction_as_text=cfg.conditioning == "instruction+position")
        present = set(int(x) for x in np.unique(splits.train.labels))
        missing = [label_names[l] for l in sampler_text.missing if l in present]
        if missing:
            raise InputError(f"no training text for labels {missing}; the text vocabulary does not cover them")

        model = build_model(cfg, head.num_expression, int(encoder.dim)).to(device)
        tr_e, tr_j, tr_l = _tensors(splits.train, device)
        model.fit_normalizers(tr_e, tr_j)
        weights = LossWeights(expr=cfg.expr_weight, pose=cfg.pose_weight, kl=cfg.kl_weight,
                              vertex=0.0 if cfg.model == "no_vertex" else cfg.vertex_weight)
        vertex_layer = None
        if cfg.model != "baseline" and weights.vertex > 0:
            vertex_layer = VertexLayer(head, max_vertices=cfg.vertex_subset, seed=cfg.seed).to(device)

        net: torch.nn.Module = model
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loader, sampler = _loader((tr_e, tr_j, tr_l), cfg.batch_size, cfg.seed, dist)
        va = _tensors(splits.val, device)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        val_gen_seed = cfg.seed + 2
        warm = max(1, int(round(cfg.kl_warmup * cfg.epochs)))
        steps_per_epoch = max(1, len(loader))
        best: Tuple[float, Optional[Dict[str, torch.Tensor]], int] = (math.inf, None, -1)
        history: List[Dict[str, float]] = []
        bar = _tqdm(range(cfg.epochs), cfg.progress and dist.is_main, desc=f"train {cfg.model}", unit="epoch")
        for epoch in bar:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            net.train()
            sums: Dict[str, float] = {}
            for step, batch in enumerate(loader):
                kl_scale = min(1.0, (epoch + step / steps_per_epoch) / warm)
                texts = sampler_text(batch[2], gen, cfg.context_dropout)
                losses = _step_losses(net, cfg.model, batch, texts, weights, kl_scale, vertex_layer, gen)
                opt.zero_grad(set_to_none=True)
                losses["total"].backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
            record = {f"train_{k}": v / steps_per_epoch for k, v in sums.items()}
            if (epoch + 1) % max(1, cfg.eval_every) == 0 or epoch == cfg.epochs - 1:
                val = _evaluate_loss(model, cfg, va, sampler_text, weights, vertex_layer, val_gen_seed)
                val_total = dist.all_mean(val["total"])
                record.update({f"val_{k}": v for k, v in val.items()})
                record["val_total"] = val_total
                # keep the best model once β has fully warmed up (earlier totals are not comparable)
                if epoch + 1 >= warm and val_total < best[0]:
                    best = (val_total, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)
            record["epoch"] = epoch
            history.append(record)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{record['train_total']:.3f}", val=f"{record.get('val_total', float('nan')):.3f}")
        if best[1] is not None:
            model.load_state_dict(best[1])
        model.eval()
        if cfg.model == "baseline":  # inference decodes text embeddings scaled to the latent norm
            with torch.no_grad():
                model.latent_norm.fill_(float(model.encode(tr_e, tr_j).norm(dim=-1).mean()))

        test = _tensors(splits.test, device)
        test_loss = _evaluate_loss(model, cfg, test, sampler_text, weights, vertex_layer, cfg.seed + 3)
        metrics: Dict[str, Any] = {
            "best_epoch": int(best[2]),
            "best_val_total": float(best[0]) if best[1] is not None else None,
            "test_loss": test_loss,
            "train_seconds": None,
        }

        ned = None
        if cfg.ned and dist.is_main:
            ned, ned_metrics = train_ned(splits, cfg, device)
            metrics["ned"] = ned_metrics

        extras = _neutral_stats(splits.train, label_names)
        metrics["train_seconds"] = round(time.perf_counter() - t_start, 1)
        meta = {
            "head_name": head.name,
            "head_kind": getattr(head, "kind", ""),
            "expression_names": list(head.expression_names),
            "text_encoder": str(encoder.name),
            "text_dim": int(encoder.dim),
            "label_names": list(label_names),
            "segment_text": cfg.segment_text,
            # the synthetic FACS data carries the open head's legibility calibration into any space
            "expression_gain": _OPEN_HEAD_GAIN if ds.meta.get("generator") == "flame_transit.data.synthetic" else 1.0,
            "training_data": {
                "source": ds.source,
                "rows": len(ds),
                "split": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
                "text_pool": pool.describe(),
                "description": cfg.description,
            },
            "train_config": cfg.to_dict(),
            "metrics": metrics,
            "history": history[-5:],
            **extras,
        }
        out = Path(cfg.out)
        if dist.is_main:
            save_checkpoint(out, model, meta=meta, ned=ned, half=cfg.half)
            log.info("wrote %s (%.1f s)", out, metrics["train_seconds"])
        dist.barrier()
        return out
    finally:
        dist.close()
        torch.set_num_threads(threads_before)


@torch.no_grad()
def _evaluate_loss(model: torch.nn.Module, cfg: TrainConfig, data: Tuple[torch.Tensor, ...], sampler_text: _TextSampler,
                   weights: Any, vertex_layer: Any, seed: int) -> Dict[str, float]:
    """Mean loss terms over ``data`` with fixed text pairing and noise (comparable across epochs)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    e, j, l = data
    if e.shape[0] == 0:
        return {"total": float("nan")}
    sums: Dict[str, float] = {}
    n = 0
    for s in range(0, e.shape[0], 1024):
        batch = (e[s : s + 1024], j[s : s + 1024], l[s : s + 1024])
        texts = sampler_text(batch[2], gen, 0.0)
        losses = _step_losses(model, cfg.model, batch, texts, weights, 1.0, vertex_layer, gen)
        b = batch[0].shape[0]
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v) * b
        n += b
    return {k: v / n for k, v in sums.items()}


def _neutral_stats(ds: Any, label_names: Sequence[str]) -> Dict[str, Any]:
    """Mean neutral expression / jaw of the training data (the reference for personalisation)."""
    if "neutral" in label_names:
        rows = ds.labels == list(label_names).index("neutral")
    else:
        rows = np.zeros(len(ds), dtype=bool)
    if rows.any():
        ne = ds.expression[rows].mean(axis=0)
        nj = ds.jaw_pose[rows].mean(axis=0)
    else:
        ne = np.zeros(ds.expression.shape[1], dtype=np.float32)
        nj = np.zeros(3, dtype=np.float32)
    return {"neutral_expression": [float(x) for x in ne], "neutral_jaw": [float(x) for x in nj]}


def ned_pairs(ds: Any, seed: int, style_std: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic NED pairs ``(expression, jaw) -> (neutral expression, neutral jaw)``.

    Each row is paired with a neutral row of the same subject (any neutral row when the subject
    has none). Each subject also gets a resting-style offset (``style_std`` × the per-coordinate
    std of the data, sparse: a third of the coordinates), added to both sides: NED has to tell
    a subject's resting face from the expression on top of it. Values are kept >= 0 for AU
    heads (all expression names start with "AU").
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(ds.labels)
    names = list(ds.label_names)
    neutral_label = names.index("neutral") if "neutral" in names else -1
    neutral_rows = np.flatnonzero(labels == neutral_label)
    e = np.asarray(ds.expression, dtype=np.float64)
    j = np.asarray(ds.jaw_pose, dtype=np.float64)
    if len(neutral_rows) == 0:
        ref_e, ref_j = np.zeros_like(e), np.zeros_like(j)
    else:
        subj = np.asarray(ds.subject)
        by_subject: Dict[int, np.ndarray] = {}
        for s in np.unique(subj[neutral_rows]):
            by_subject[int(s)] = neutral_rows[subj[neutral_rows] == s]
        pick = np.empty(len(e), dtype=np.int64)
        for i in range(len(e)):
            cand = by_subject.get(int(subj[i])) if subj[i] >= 0 else None
            if cand is None or len(cand) == 0:
                cand = neutral_rows
            pick[i] = cand[rng.integers(len(cand))]
        ref_e, ref_j = e[pick], j[pick]
    subjects, inverse = np.unique(np.asarray(ds.subject), return_inverse=True)
    std = e.std(axis=0) + 1e-6
    style = rng.normal(0.0, 1.0, size=(len(subjects), e.shape[1])) * std * style_std
    style *= rng.random((len(subjects), e.shape[1])) < 1.0 / 3.0
    au_head = is_action_unit_space(ds.expression_names)
    if au_head:
        style = np.abs(style)
    off = style[inverse]
    x_e, y_e = e + off, ref_e + off
    if au_head:
        x_e, y_e = np.clip(x_e, 0, None), np.clip(y_e, 0, None)
    f = lambda a: a.astype(np.float32)
    return f(x_e), f(j), f(y_e), f(ref_j)


def train_ned(splits: Any, cfg: TrainConfig, device: torch.device = torch.device("cpu")) -> Tuple[Any, Dict[str, float]]:
    """Train the NED on synthetic pairs (:func:`ned_pairs`); returns ``(model, metrics)``."""
    from .ned import NED, NEDConfig, ned_loss

    expr_dim = int(splits.train.expression.shape[1])
    ned = NED(NEDConfig(expr_dim=expr_dim)).to(device)
    xe, xj, ye, yj = (torch.as_tensor(a, device=device) for a in ned_pairs(splits.train, cfg.seed, cfg.ned_style_std))
    ned.fit_normalizers(xe, xj, ye, yj)
    opt = torch.optim.Adam(ned.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed + 11)
    n = xe.shape[0]
    bar = _tqdm(range(cfg.ned_epochs), cfg.progress, desc="train NED", unit="epoch")
    for _ in bar:
        perm = torch.randperm(n, generator=g).to(device)
        for s in range(0, n, cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            loss = ned_loss(ned, xe[idx], xj[idx], ye[idx], yj[idx])["total"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    ned.eval()
    te = [torch.as_tensor(a, device=device) for a in ned_pairs(splits.test, cfg.seed + 5, cfg.ned_style_std)]
    with torch.no_grad():
        pred_e, pred_j = ned(te[0], te[1])
        rmse_e = float((pred_e - te[2]).pow(2).mean().sqrt())
        rmse_j = float((pred_j - te[3]).pow(2).mean().sqrt())
        base_e = float((te[0] - te[2]).pow(2).mean().sqrt())
    return ned, {"test_rmse_expression": rmse_e, "test_rmse_jaw": rmse_j, "input_rmse_expression": base_e}
