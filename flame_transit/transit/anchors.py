"""Instruction → anchors: the public entry point of the transit stage.

:func:`generate_anchors` turns an instruction ("Turn this face from disgust to happiness.") into
:class:`~flame_transit.trajectory.Anchors` -- K expression codes with jaw poses, one per
expression the instruction names -- using a trained I2FET checkpoint (the bundled one by
default). :func:`neutral_anchor` gives the subject's neutral face from the NED.

Per anchor ``k`` (see :mod:`flame_transit.transit.conditioning` for the text side):

1. the model samples ``(e_gen, j_gen)`` from its condition with latent noise
   ``z ~ N(0, τ² I)``; the noise depends only on ``(seed, sample index, k)``, so the same seed
   gives the same anchors, whether an instruction is generated alone or in a batch;
2. blends ("bittersweet") mix their components' outputs by weight;
3. **intensity** (``slightly`` 0.3, default 1.0, ``very`` 1.25, ...) scales the expression
   about the neutral face: ``e = n_e + s (e_gen − r_e)`` and ``j = n_j + s (j_gen − r_j)``,
   (on AU heads ``s`` also carries :data:`AU_HEAD_EXPRESSION_GAIN`, calibrated for legibility),
   where ``r`` is the training data's mean neutral face and ``n`` the neutral face the anchor is
   built on: ``r`` itself, or the subject's own neutral (NED of the subject's photo
   parameters) with ``personalize=True`` and a subject. Scaling the axis-angle jaw offset
   scales the rotation angle about its axis (slerp from the neutral jaw);
4. **explicit action units** from the instruction ("raise the eyebrows", "open the mouth") set
   the named coordinates (AU26 = jaw drop sets the jaw's opening rotation); on AU heads every
   coordinate is then clamped to ``AU_RANGE`` = ``[0, 3]``.

Example:
    >>> from flame_transit.transit import generate_anchors
    >>> a = generate_anchors("Turn this face from disgust to happiness.", seed=0)
    >>> a.labels, tuple(a.expression.shape)
    (['disgust', 'happiness'], (2, 22))
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np
import torch

from ..checks import MAX_TEMPERATURE
from ..errors import CheckpointMismatchError, InputError, InstructionError
from ..expressions import is_action_unit_space
from ..head.open_head import EXPRESSION_GAIN as _OPEN_HEAD_GAIN

__all__ = ["generate_anchors", "generate_anchors_batch", "neutral_anchor", "resolve_model", "AU_RANGE", "latent_noise"]

log = logging.getLogger(__name__)

#: range of AU-coordinate expressions after explicit AUs are applied (wide enough that the
#: legibility gain below leaves room for "very")
AU_RANGE = (0.0, 3.0)
#: Gain on the generated expression offset for AU heads: the open head's calibration
#: (:data:`~flame_transit.head.open_head.EXPRESSION_GAIN`). Intensity words scale on top of it
#: ("slightly" 0.3 x gain), and the AU range still clamps. FLAME-space models use 1.0.
AU_HEAD_EXPRESSION_GAIN = _OPEN_HEAD_GAIN
#: jaw rotation (rad about +X) per unit of AU26 when the head does not define one
_DEFAULT_JAW_PER_AU26 = 0.21


def _jaw_per_au26() -> float:
    try:
        from ..head.open_head import JAW_RAD_PER_AU26

        return float(JAW_RAD_PER_AU26)
    except Exception:
        return _DEFAULT_JAW_PER_AU26


def resolve_model(model: Any = None, head: Any = None, text_encoder: Any = None) -> Any:
    """A :class:`~flame_transit.transit.checkpoint.TransitModel` from ``None`` (the bundled
    model for ``head`` / ``text_encoder``), a checkpoint path or a loaded model; checks that it
    matches ``head`` and ``text_encoder`` when they are given."""
    from .checkpoint import TransitModel, load_checkpoint, load_default_model

    if isinstance(model, TransitModel):
        model.check(head=head, text_encoder=text_encoder)
        return model
    if model is None:
        return load_default_model(head=head, text_encoder=text_encoder)
    if isinstance(model, (str, os.PathLike)):
        return load_checkpoint(model, head=head, text_encoder=text_encoder)
    raise InputError(f"model must be None, a checkpoint path or a loaded TransitModel, got {type(model).__name__}")


def _encoder_for(tm: Any, text_encoder: Any) -> Any:
    if text_encoder is None or isinstance(text_encoder, str):
        enc = tm.text_encoder()
        if isinstance(text_encoder, str):
            tm.check(text_encoder=text_encoder)
        return enc
    tm.check(text_encoder=text_encoder)
    return text_encoder


def latent_noise(seed: int, num_samples: int, positions: int, dim: int) -> torch.Tensor:
    """Standard-normal latent draws ``(num_samples, positions, dim)``; entry ``[s, k]`` depends
    only on ``(seed, s, k)``.

    Example:
        >>> a = latent_noise(3, 2, 4, 5); b = latent_noise(3, 1, 2, 5)
        >>> bool(torch.equal(a[:1, :2], b))
        True
    """
    out = torch.empty(num_samples, positions, dim)
    for s in range(num_samples):
        for k in range(positions):
            ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF, s, k])
            g = torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0]) >> 1)
            out[s, k] = torch.randn(dim, generator=g)
    return out


def _parse(instruction: Any) -> Tuple[Any, str]:
    from ..text import parse_instruction

    if isinstance(instruction, str):
        if not instruction.strip():
            raise InstructionError("the instruction is empty; write e.g. 'Turn this face from disgust to happiness.'")
        return parse_instruction(instruction), instruction
    if hasattr(instruction, "segments"):
        text = getattr(instruction, "text", None) or ""
        return instruction, str(text)
    raise InputError(f"an instruction must be a str or a ParsedInstruction, got {type(instruction).__name__}")


def _subject_neutral(tm: Any, subject: Any, ref_e: torch.Tensor, ref_j: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    e_dim = tm.expression_dim
    expr = torch.as_tensor(subject.expression, dtype=torch.float32).reshape(-1, subject.expression.shape[-1])[:1]
    if expr.shape[-1] != e_dim:
        raise CheckpointMismatchError(
            f"the subject has {expr.shape[-1]} expression coefficients, the transit model {e_dim} "
            f"(head {tm.head_name!r}); encode the photo with the model's head"
        )
    name = str(getattr(subject, "head_name", "") or "")
    if name and tm.head_name and name != tm.head_name:
        raise CheckpointMismatchError(
            f"the subject's parameters belong to head {name!r}, the transit model to {tm.head_name!r}"
        )
    if tm.ned is None:
        return ref_e, ref_j
    jaw = torch.as_tensor(subject.pose, dtype=torch.float32).reshape(-1, 15)[:1, 6:9]
    with torch.no_grad():
        ne, nj = tm.ned(expr, jaw)
    return ne[0], nj[0]


def _au_index(tm: Any) -> Dict[str, int]:
    key = "au_index"
    idx = tm._cache.get(key)
    if idx is None:
        idx = {str(n).upper(): i for i, n in enumerate(tm.expression_names)}
        tm._cache[key] = idx
    return idx


def expression_gain(tm: Any) -> float:
    """Gain on generated expression offsets: the checkpoint's ``expression_gain`` (models trained
    on the synthetic FACS data, in AU or FLAME space, carry the open head's calibration), else
    :data:`AU_HEAD_EXPRESSION_GAIN` for AU heads and 1.0 otherwise."""
    gain = tm.meta.get("expression_gain")
    if gain is None:
        gain = AU_HEAD_EXPRESSION_GAIN if is_action_unit_space(tm.expression_names) else 1.0
    return float(gain)


def _to_head_space(a: Any, basis: Any, names: Sequence[str], head: Any) -> Any:
    """AU anchors of the bundled model (``names``: its AU coordinates) -> ``head``'s
    coefficients through ``basis`` (a :class:`~flame_transit.data.flame_space.FlameAUBasis`);
    the AU intensities, with the jaw opening as AU26, stay on the result (``Anchors.au``)."""
    from ..trajectory import Anchors

    names = [str(n) for n in names]
    missing = [n for n in basis.au_names if n not in names]
    if missing:
        raise CheckpointMismatchError(f"the AU basis of head {head.name!r} names AUs {missing} that the AU model "
                                      f"lacks ({names}); refit it (delete the cached basis)")
    aus = a.expression.double().numpy()
    jaw = a.jaw_pose.double().numpy()
    au26 = jaw[:, 0] / basis.jaw_per_au26[0]
    expr, jaw_m = basis.apply(aus[:, [names.index(n) for n in basis.au_names]], au26)
    jaw_m[:, 1:] += jaw[:, 1:]  # side/roll components of the generated jaw pass through
    return Anchors(expression=expr, jaw_pose=jaw_m, labels=list(a.labels), head_name=head.name,
                   au=np.concatenate([aus, np.maximum(au26, 0.0)[:, None]], axis=1), au_names=tuple(names) + ("AU26",))


def _through_au_basis(instructions: Sequence[Any], head: Any, **options: Any) -> Union[List[Any], List[List[Any]]]:
    """Anchors for a head whose expression space is not action units (FLAME) from the bundled
    AU model: AU anchors on the open head, mapped by the head's AU -> FLAME basis
    (:func:`~flame_transit.data.flame_space.au_basis_for`, fitted once per model and cached).
    Each anchor keeps its AU intensities (``Anchors.au``)."""
    from ..data.flame_space import au_basis_for
    from .checkpoint import load_default_model

    basis = au_basis_for(head)
    names = [str(n) for n in load_default_model().expression_names]
    results = generate_anchors_batch(instructions, subject=None, model=None, head=None, personalize=False, **options)
    nested = results if options.get("num_samples", 1) > 1 else [[r] for r in results]
    out = [[_to_head_space(a, basis, names, head) for a in samples] for samples in nested]
    return out if options.get("num_samples", 1) > 1 else [m[0] for m in out]


def generate_anchors_batch(
    instructions: Sequence[Any],
    *,
    subject: Any = None,
    model: Any = None,
    head: Any = None,
    text_encoder: Any = None,
    seed: int = 0,
    num_samples: int = 1,
    temperature: float = 1.0,
    personalize: bool = True,
) -> Union[List[Any], List[List[Any]]]:
    """:func:`generate_anchors` for many instructions in one batched model call.

    Returns one :class:`~flame_transit.trajectory.Anchors` per instruction (a list of
    ``num_samples`` of them per instruction when ``num_samples > 1``). Instruction ``i`` gets
    exactly what ``generate_anchors(instructions[i], seed=seed, ...)`` gives.
    """
    from ..trajectory import Anchors
    from .conditioning import segment_queries

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer, got {seed!r}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise InputError(f"num_samples must be a positive integer, got {num_samples!r}")
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise InputError(f"temperature must be a number, got {temperature!r}") from None
    if not (np.isfinite(temperature) and 0 <= temperature <= MAX_TEMPERATURE):
        raise InputError(f"temperature must be a number in [0, {MAX_TEMPERATURE:g}] (1 = the model's own "
                         f"spread, 0 = its typical expression), got {temperature}")

    if model is None and head is not None and not is_action_unit_space(getattr(head, "expression_names", ())):
        return _through_au_basis(instructions, head, text_encoder=text_encoder, seed=seed,
                                 num_samples=num_samples, temperature=temperature)
    tm = resolve_model(model, head=head, text_encoder=text_encoder if not isinstance(text_encoder, str) else None)
    label_names = tuple(tm.meta.get("label_names", ()))
    mode = str(tm.meta.get("segment_text", "canonical"))
    cfg = getattr(tm.model, "cfg", None)
    conditioning = str(getattr(cfg, "conditioning", "segment"))

    # 1. queries
    per_instr: List[List[Any]] = []
    for ins in instructions:
        parsed, text = _parse(ins)
        if not getattr(parsed, "segments", None):
            raise InstructionError(f"no expression found in {text!r}; name one, e.g. 'from disgust to happiness'")
        per_instr.append(segment_queries(parsed, text or None, mode, label_names or None))
    if not per_instr:
        return []

    # 2. text embeddings (one encoder call for all distinct strings)
    strings: Dict[str, int] = {}
    for qs in per_instr:
        for q in qs:
            for c in q.components:
                strings.setdefault(c.text, len(strings))
            if conditioning != "segment":
                strings.setdefault(q.context, len(strings))
    encoder = _encoder_for(tm, text_encoder)
    emb = encoder.encode(list(strings)).float()

    # 3. one row per (sample, instruction, segment, component)
    rows_text, rows_ctx, rows_pos, rows_noise_k = [], [], [], []
    seg_of_row: List[int] = []
    weights: List[float] = []
    seg_count = 0
    kmax = max(len(qs) for qs in per_instr)
    for qs in per_instr:
        for q in qs:
            for c in q.components:
                rows_text.append(strings[c.text])
                rows_ctx.append(strings.get(q.context, strings[c.text]))
                rows_pos.append(q.position)
                rows_noise_k.append(q.position)
                seg_of_row.append(seg_count)
                weights.append(c.weight)
            seg_count += 1
    text_idx = torch.as_tensor(rows_text)
    ctx_idx = torch.as_tensor(rows_ctx)
    pos = torch.as_tensor(rows_pos, dtype=torch.long)
    zdim = int(getattr(cfg, "z_expr", 0)) + int(getattr(cfg, "z_pose", 0))
    noise_table = latent_noise(int(seed), int(num_samples), kmax, max(zdim, 1))
    t_emb, c_emb = emb[text_idx], emb[ctx_idx]
    if conditioning == "instruction+position":
        t_emb = c_emb
    n_rows = len(rows_text)
    t_all = t_emb.repeat(num_samples, 1)
    c_all = c_emb.repeat(num_samples, 1)
    p_all = pos.repeat(num_samples)
    noise = noise_table[:, torch.as_tensor(rows_noise_k)].reshape(num_samples * n_rows, -1)
    with torch.no_grad():
        if tm.kind == "i2fet":
            e_gen, j_gen = tm.model.sample(t_all, c_all, p_all, noise=noise, temperature=temperature)
        else:
            e_gen, j_gen = tm.model.sample(t_all, c_all, p_all)

    # 4. mix components into segments
    seg_index = torch.as_tensor(seg_of_row).repeat(num_samples) + torch.arange(num_samples).repeat_interleave(n_rows) * seg_count
    w = torch.as_tensor(weights, dtype=torch.float32).repeat(num_samples)
    total = num_samples * seg_count
    wsum = torch.zeros(total).index_add_(0, seg_index, w).clamp_min(1e-8)
    e_seg = torch.zeros(total, e_gen.shape[1]).index_add_(0, seg_index, e_gen * w[:, None]) / wsum[:, None]
    j_seg = torch.zeros(total, 3).index_add_(0, seg_index, j_gen * w[:, None]) / wsum[:, None]
    e_seg = e_seg.view(num_samples, seg_count, -1)
    j_seg = j_seg.view(num_samples, seg_count, 3)

    # 5. intensity about the neutral face, explicit AUs, clamping
    ref_e = torch.as_tensor(tm.meta.get("neutral_expression", [0.0] * e_gen.shape[1]), dtype=torch.float32)
    ref_j = torch.as_tensor(tm.meta.get("neutral_jaw", [0.0] * 3), dtype=torch.float32)
    base_e, base_j = ref_e, ref_j
    if subject is not None and personalize:
        base_e, base_j = _subject_neutral(tm, subject, ref_e, ref_j)
    intens = torch.as_tensor([q.intensity for qs in per_instr for q in qs], dtype=torch.float32)
    intens = intens * expression_gain(tm)
    e_out = base_e + intens[None, :, None] * (e_seg - ref_e)
    j_out = base_j + intens[None, :, None] * (j_seg - ref_j)
    au_idx = _au_index(tm)
    au_head = is_action_unit_space(tm.expression_names)
    jaw_per = _jaw_per_au26()
    s = 0
    for qs in per_instr:
        for q in qs:
            for au, value in q.aus.items():
                key = au.upper()
                v = float(np.clip(value, *AU_RANGE)) if au_head else float(value)
                if key == "AU26":
                    j_out[:, s, 0] = base_j[0] + jaw_per * max(v, 0.0)
                elif key in au_idx:
                    e_out[:, s, au_idx[key]] = v
                elif key[-1:] in ("L", "R") and key[:-1] in au_idx:  # one-sided AU on a head without sides
                    e_out[:, s, au_idx[key[:-1]]] = max(float(e_out[0, s, au_idx[key[:-1]]]), 0.5 * v)
                else:
                    log.warning("action unit %s is not an expression coordinate of head %r; ignored", au, tm.head_name)
            s += 1
    if au_head:
        e_out = e_out.clamp(*AU_RANGE)

    # 6. pack
    results: List[List[Any]] = []
    start = 0
    for qs in per_instr:
        k = len(qs)
        labels = [q.label for q in qs]
        samples = [
            Anchors(expression=e_out[i, start : start + k].clone(), jaw_pose=j_out[i, start : start + k].clone(),
                    labels=labels, head_name=tm.head_name)
            for i in range(num_samples)
        ]
        results.append(samples)
        start += k
    if num_samples == 1:
        return [r[0] for r in results]
    return results


def generate_anchors(
    instruction: Any,
    *,
    subject: Any = None,
    model: Any = None,
    head: Any = None,
    text_encoder: Any = None,
    seed: int = 0,
    num_samples: int = 1,
    temperature: float = 1.0,
    personalize: bool = True,
) -> Union[Any, List[Any]]:
    """Anchor expressions for an instruction.

    Args:
        instruction: the text ("Turn this face from disgust to happiness.") or a
            :class:`~flame_transit.text.ParsedInstruction`; a list of them runs
            :func:`generate_anchors_batch`.
        subject: the photo's :class:`~flame_transit.params.FaceParams`; with ``personalize``
            the anchors are built on the subject's own neutral face (NED).
        model: ``None`` (the bundled checkpoint for ``head`` and the text encoder), a checkpoint
            path or a :class:`~flame_transit.transit.checkpoint.TransitModel`.
        head: the head in use; a checkpoint trained for another head raises
            :class:`~flame_transit.errors.CheckpointMismatchError`.
        text_encoder: ``None`` (the checkpoint's), a name or an encoder object; another encoder
            than the checkpoint's raises :class:`~flame_transit.errors.CheckpointMismatchError`.
        seed: latent noise seed (same seed, same anchors).
        num_samples: > 1 returns a list of that many different samples.
        temperature: scale of the latent noise (0 = the mode: the model's typical expression).
        personalize: build anchors on the subject's neutral face (needs ``subject``).

    Returns:
        :class:`~flame_transit.trajectory.Anchors` with ``expression (K, E)``,
        ``jaw_pose (K, 3)`` and the K segment labels (or a list of ``num_samples`` of them).

    Raises:
        InstructionError: the instruction names no expression.
    """
    if isinstance(instruction, (list, tuple)):
        return generate_anchors_batch(instruction, subject=subject, model=model, head=head, text_encoder=text_encoder,
                                      seed=seed, num_samples=num_samples, temperature=temperature, personalize=personalize)
    return generate_anchors_batch([instruction], subject=subject, model=model, head=head, text_encoder=text_encoder,
                                  seed=seed, num_samples=num_samples, temperature=temperature, personalize=personalize)[0]


def neutral_anchor(subject: Any = None, *, model: Any = None, head: Any = None) -> Any:
    """The subject's neutral face as one :class:`~flame_transit.trajectory.Anchors` (label
    ``"neutral"``), from the checkpoint's NED; without a subject (or NED) the training data's
    mean neutral face.

    Example:
        >>> neutral_anchor().labels
        ['neutral']
    """
    from ..trajectory import Anchors

    if model is None and head is not None and not is_action_unit_space(getattr(head, "expression_names", ())):
        # a FLAME head with the bundled AU model: the AU model's neutral face through the AU map
        from ..data.flame_space import au_basis_for

        return _to_head_space(neutral_anchor(), au_basis_for(head), resolve_model(None).expression_names, head)
    tm = resolve_model(model, head=head)
    ref_e = torch.as_tensor(tm.meta.get("neutral_expression", [0.0] * tm.expression_dim), dtype=torch.float32)
    ref_j = torch.as_tensor(tm.meta.get("neutral_jaw", [0.0] * 3), dtype=torch.float32)
    e, j = (ref_e, ref_j) if subject is None else _subject_neutral(tm, subject, ref_e, ref_j)
    if is_action_unit_space(tm.expression_names):
        e = e.clamp(*AU_RANGE)
    return Anchors(expression=e[None].clone(), jaw_pose=j[None].clone(), labels=["neutral"], head_name=tm.head_name)
