"""Synthetic FACS emotion data: labelled expression codes sampled around the EMFACS prototypes.

Real labelled 3D expression data (CK+ through an encoder) cannot ship with the library, so the
default training and evaluation data are sampled in **action-unit space** and mapped to the
head's expression space:

* the open head's expression coordinates *are* AUs (:data:`~flame_transit.head.open_head.EXPRESSION_NAMES`),
  and AU26 (jaw drop) is its jaw rotation;
* a FLAME head gets the same AU samples through a fitted AU → FLAME-expression map
  (:mod:`flame_transit.data.flame_space`, an approximation).

Per emotion, each sample starts from the EMFACS prototype (Ekman & Friesen; see
``docs``/DESIGN) and varies the way posed expressions of different people vary:

* **core AUs** always present, **optional AUs** present with a probability (e.g. sadness 17,
  surprise 25, anger 24, disgust 10 / 16 / 25; disgust is sometimes led by AU10 instead of AU9);
* an **overall intensity** ``s ~ U(0.35, 1)`` (stored as ``intensity``) times a per-AU jitter
  ``U(0.75, 1.25)``;
* **asymmetry**: a bilateral AU12 / AU14 gets a small extra on one side (through the L/R AUs);
  contempt is unilateral 12 + 14 on a random side;
* **jaw opening** (AU26) for surprise and fear (and sometimes happiness) with variation, small
  lateral jaw noise;
* low-level **noise** on every AU and occasionally one unrelated AU at low intensity;
* **small head rotations** and **varied identities** (random shape coefficients per subject);
* **neutral** rows (label 0): noise only, for the neutral encoder-decoder (NED).

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``: same seed, same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from ..expressions import EXPRESSION_CLASSES, ExpressionClass
from .au_space import AU_NAMES, au_to_head_matrix, open_head_constants
from .dataset import BASIC_EMOTIONS, LABEL_NAMES, ExpressionDataset, normalize_label

__all__ = [
    "AU_NAMES",
    "EMOTION_SPECS",
    "EmotionSpec",
    "emotion_spec",
    "sample_au_codes",
    "make_synthetic_dataset",
    "instruction_pairs",
    "au_to_head_matrix",
]


@dataclass(frozen=True)
class EmotionSpec:
    """How the AUs of one emotion vary.

    Attributes:
        core: AU -> base intensity, always present.
        optional: AU -> (probability, base intensity), each present independently.
        jaw: (probability, low, high) of an AU26 jaw drop with intensity ``U(low, high)``.
        unilateral: AUs applied on one random side (``AU12`` -> ``AU12L`` or ``AU12R``).
    """

    core: Mapping[str, float]
    optional: Mapping[str, Tuple[float, float]]
    jaw: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    unilateral: Tuple[str, ...] = ()


def emotion_spec(cls: ExpressionClass) -> EmotionSpec:
    """The sampling spec of one expression class: its prototype's AUs (but AU26, the jaw) are
    core AUs unless its :class:`~flame_transit.expressions.Variation` makes them optional.

    Example:
        >>> from flame_transit.expressions import EXPRESSION_CLASSES
        >>> spec = emotion_spec(EXPRESSION_CLASSES["surprise"])
        >>> dict(spec.core), dict(spec.optional), spec.jaw
        ({'AU1': 0.55, 'AU2': 0.55, 'AU5': 0.9, 'AU25': 0.5}, {}, (1.0, 0.8, 1.2))
    """
    var = cls.variation
    if var is None:
        raise InputError("this expression class has no variation (neutral rows are noise only)")
    proto = {au: float(v) for au, v in cls.prototype.items() if au != "AU26"}
    core = {}
    for au, value in proto.items():
        if au not in var.optional:
            core[au[:-1] if var.unilateral and au[-1] in "LR" else au] = float(var.core.get(au, value))
    core.update({au: float(v) for au, v in var.core.items() if au not in proto})
    optional = {au: (float(prob), max(proto.get(au, 0.0), float(base))) for au, (prob, base) in var.optional.items()}
    unilateral = tuple(au[:-1] for au in proto if var.unilateral and au[-1] in "LR")
    return EmotionSpec(core=core, optional=optional, jaw=tuple(float(x) for x in var.jaw), unilateral=unilateral)


#: variation specs of the basic emotions (neutral has none), from the table of expression classes
EMOTION_SPECS: Dict[str, EmotionSpec] = {
    label: emotion_spec(cls) for label, cls in EXPRESSION_CLASSES.items() if cls.variation is not None
}

_BILATERAL = {"AU12": ("AU12L", "AU12R"), "AU14": ("AU14L", "AU14R")}


def sample_au_codes(
    emotion: str,
    n: int,
    rng: np.random.Generator,
    *,
    intensity_range: Tuple[float, float] = (0.35, 1.0),
    noise: float = 0.03,
    stray_probability: float = 0.3,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample ``n`` AU codes of one emotion.

    Args:
        emotion: a label name (``"neutral"`` or one of :data:`~flame_transit.data.dataset.BASIC_EMOTIONS`).
        n: number of samples.
        rng: the random generator (all randomness comes from it).
        intensity_range: range of the overall intensity ``s``.
        noise: std of the additive noise on every AU (clipped at 0).
        stray_probability: chance of one unrelated AU at low intensity.

    Returns:
        ``aus (n, len(AU_NAMES))`` intensities >= 0, ``au26 (n,)`` jaw-drop intensities and
        ``intensity (n,)`` (0 for neutral).

    Example:
        >>> aus, au26, s = sample_au_codes("surprise", 5, np.random.default_rng(0))
        >>> aus.shape, bool((au26 > 0).any()), bool((aus >= 0).all())
        ((5, 22), True, True)
    """
    emotion = normalize_label(emotion)
    index = {a: i for i, a in enumerate(AU_NAMES)}
    A = len(AU_NAMES)
    aus = np.zeros((n, A), dtype=np.float64)
    au26 = np.zeros(n, dtype=np.float64)
    if emotion == "neutral":
        s = np.zeros(n)
        stray_scale = 0.15
    else:
        spec = EMOTION_SPECS[emotion]
        lo, hi = intensity_range
        s = rng.uniform(lo, hi, size=n)
        stray_scale = 0.25
        for au, base in spec.core.items():
            value = base * s * rng.uniform(0.75, 1.25, size=n)
            if au in spec.unilateral:
                continue  # placed per sample below
            aus[:, index[au]] += value
        for au, (prob, base) in spec.optional.items():
            present = rng.random(n) < prob
            value = base * s * rng.uniform(0.75, 1.25, size=n)
            aus[:, index[au]] += np.where(present, value, 0.0)
        if spec.unilateral:
            side = rng.integers(0, 2, size=n)  # 0 = left (L), 1 = right (R)
            for au in spec.unilateral:
                base = spec.core[au]
                value = base * s * rng.uniform(0.75, 1.25, size=n)
                left, right = _BILATERAL[au]
                aus[np.arange(n), np.where(side == 0, index[left], index[right])] += value
        else:
            # mild asymmetry of bilateral AUs (same side for 12 and 14)
            asym = rng.random(n) < 0.5
            side = rng.integers(0, 2, size=n)
            extra = rng.uniform(0.05, 0.2, size=n)
            for au, (left, right) in _BILATERAL.items():
                if au in index and au in spec.core:
                    amount = np.where(asym, extra * aus[:, index[au]], 0.0)
                    aus[np.arange(n), np.where(side == 0, index[left], index[right])] += amount
        prob, jlo, jhi = spec.jaw
        if prob > 0:
            present = rng.random(n) < prob
            au26 = np.where(present, rng.uniform(jlo, jhi, size=n) * (0.5 + 0.5 * s), 0.0)
    # stray low-level AU (encoder noise, individual habits)
    stray = rng.random(n) < stray_probability
    which = rng.integers(0, A, size=n)
    aus[np.arange(n), which] += np.where(stray, rng.uniform(0.03, stray_scale, size=n), 0.0)
    aus += rng.normal(0.0, noise, size=aus.shape)
    au26 = au26 + np.abs(rng.normal(0.0, 0.02, size=n))
    return np.clip(aus, 0.0, 1.25), np.clip(au26, 0.0, 1.25), s


def _resolve_head(head: Any) -> Any:
    from ..head import load_head

    if head is None or isinstance(head, (str, bytes)) or hasattr(head, "__fspath__"):
        return load_head(head)
    return head


def make_synthetic_dataset(
    head: Any = None,
    *,
    samples_per_emotion: int = 400,
    seed: int = 0,
    include_neutral: bool = True,
    emotions: Optional[Sequence[str]] = None,
    num_subjects: Optional[int] = None,
    au_basis: Any = None,
    head_pose_std: Tuple[float, float, float] = (0.08, 0.12, 0.05),
    shape_std: float = 1.0,
    intensity_range: Tuple[float, float] = (0.35, 1.0),
) -> ExpressionDataset:
    """Synthetic labelled expression codes for a head.

    Args:
        head: a :class:`~flame_transit.head.Head` (or a path for ``load_head``); ``None`` = the
            bundled open head. A FLAME head needs ``au_basis`` or a landmark embedding with
            MediaPipe indices (see :func:`flame_transit.data.flame_space.fit_au_basis`).
        samples_per_emotion: rows per emotion (and for neutral).
        seed: all randomness comes from ``numpy.random.default_rng(seed)``.
        include_neutral: add ``samples_per_emotion`` neutral rows (label 0).
        emotions: which emotions (default: the seven basic ones).
        num_subjects: identities; rows are spread evenly over them (default
            ``clip(total // 8, 20, 200)``).
        au_basis: a :class:`~flame_transit.data.flame_space.FlameAUBasis` for non-AU heads.
        head_pose_std: std (radians) of pitch, yaw, roll of the head rotation.
        shape_std: std of the identity coefficients (1.0 = one standard deviation on both heads).
        intensity_range: range of the overall expression intensity.

    Returns:
        :class:`ExpressionDataset` with ``intensity`` filled in and the sample AUs in
        ``meta["generator"]``.

    Example:
        >>> ds = make_synthetic_dataset(samples_per_emotion=3, seed=1)
        >>> len(ds), ds.counts()["fear"], ds.expression.shape[1]
        (24, 3, 22)
    """
    if not isinstance(samples_per_emotion, (int, np.integer)) or samples_per_emotion < 1:
        raise InputError(f"samples_per_emotion must be a positive integer, got {samples_per_emotion!r}")
    lo, hi = intensity_range
    if not 0.0 < lo <= hi:
        raise InputError(f"intensity_range must satisfy 0 < low <= high, got {intensity_range}")
    head = _resolve_head(head)
    emo = [normalize_label(e) for e in (emotions if emotions is not None else BASIC_EMOTIONS)]
    emo = [e for e in emo if e != "neutral"]
    if len(set(emo)) != len(emo):
        raise InputError(f"emotions contains duplicates: {emotions}")
    classes = (["neutral"] if include_neutral else []) + emo
    if not classes:
        raise InputError("no emotions to sample: give emotions or include_neutral=True")

    _, jaw_per_au26 = open_head_constants()
    # how AU samples become this head's expression + jaw
    if head.is_au_head:
        to_expr = au_to_head_matrix(head.expression_names)
        au_basis = None  # the AU samples are this head's coordinates
        mapping = "identity (AU head)"
    else:
        if au_basis is None:
            from .flame_space import au_basis_for

            au_basis = au_basis_for(head)  # fitted once per model, cached
        au_basis.check(head)
        mapping = f"fitted AU->FLAME map ({au_basis.describe()})"

    rng = np.random.default_rng(seed)
    n_per = int(samples_per_emotion)
    total = n_per * len(classes)
    if num_subjects is None:
        num_subjects = int(np.clip(total // 8, 20, 200))
    if num_subjects < 1:
        raise InputError(f"num_subjects must be >= 1, got {num_subjects}")

    aus_all, au26_all, s_all, lab_all = [], [], [], []
    for name in classes:
        aus, au26, s = sample_au_codes(name, n_per, rng, intensity_range=intensity_range)
        aus_all.append(aus)
        au26_all.append(au26)
        s_all.append(s)
        lab_all.append(np.full(n_per, LABEL_NAMES.index(name), dtype=np.int64))
    aus = np.concatenate(aus_all)
    au26 = np.concatenate(au26_all)
    intensity = np.concatenate(s_all)
    labels = np.concatenate(lab_all)

    # subjects: each class spread evenly over the identities
    subject = np.concatenate([rng.permutation(np.arange(n_per) % num_subjects) for _ in classes])
    S = int(head.num_shape)
    used = min(S, 100)
    identities = np.zeros((num_subjects, S))
    identities[:, :used] = rng.normal(0.0, shape_std, size=(num_subjects, used))
    shape = identities[subject]

    if au_basis is None:
        expression = aus @ to_expr.T
        jaw = au26[:, None] * np.array([[jaw_per_au26, 0.0, 0.0]])
    else:
        expression, jaw = au_basis.apply(aus, au26)
        jaw[:, 0] = np.maximum(jaw[:, 0], 0.0)  # a fitted map may ask for a closing jaw
    jaw[:, 1:] += rng.normal(0.0, 0.01, size=(total, 2))  # small lateral jaw motion
    global_pose = rng.normal(0.0, 1.0, size=(total, 3)) * np.asarray(head_pose_std)[None, :]

    meta = {
        "generator": "flame_transit.data.synthetic",
        "seed": int(seed),
        "samples_per_emotion": n_per,
        "num_subjects": int(num_subjects),
        "classes": classes,
        "au_names": list(AU_NAMES),
        "mapping": mapping,
        "intensity_range": [float(lo), float(hi)],
    }
    return ExpressionDataset(
        expression=expression,
        jaw_pose=jaw,
        shape=shape,
        global_pose=global_pose,
        labels=labels,
        subject=subject,
        head_name=head.name,
        expression_names=tuple(head.expression_names),
        source=f"synthetic FACS (EMFACS prototypes), seed={seed}, {n_per} per class",
        intensity=intensity,
        meta=meta,
    )


# -- instructions -------------------------------------------------------------------------------

def render_template(
    template: str,
    labels: Sequence[str],
    rng: Union[np.random.Generator, int, None] = None,
    words: str = "train",
) -> str:
    """Fill an instruction template with emotion words.

    Uses :func:`flame_transit.text.templates.render_instruction` (placeholders ``{a}``, ``{b}``,
    ``{a_adj}``, ...; ``rng`` samples synonyms from the ``words`` pool, ``None`` = canonical
    words). ``[A]`` / ``[B]`` placeholders (the paper's notation) are accepted too.

    Example:
        >>> render_template("Turn this face from [A] to [B].", ["disgust", "happiness"])
        'Turn this face from disgust to happiness.'
    """
    labs = [normalize_label(l) for l in labels]
    if len(labs) != 2:
        raise InputError(f"templates take two expressions (from A to B), got {len(labs)}")
    template = template.replace("[A]", "{a}").replace("[B]", "{b}")
    try:
        from ..text.templates import render_instruction
    except ImportError:  # pragma: no cover - the text package ships with flame_transit
        text = template.format(a=labs[0], b=labs[1], a_noun=labs[0], b_noun=labs[1], a_adj=labs[0], b_adj=labs[1])
        return text[:1].upper() + text[1:]
    return str(render_instruction(template, labs[0], labs[1], rng, words))


def instruction_pairs(
    dataset: ExpressionDataset,
    templates: Sequence[str],
    rng: Union[np.random.Generator, int, None] = None,
    *,
    num_pairs: Optional[int] = None,
    emotions: Optional[Sequence[str]] = None,
    same_subject: bool = True,
    synonyms: bool = True,
) -> List[Tuple[str, int, int]]:
    """Training pairs ``(instruction text, index_A, index_B)`` for "from A to B" instructions.

    For each pair, a random ordered pair of distinct emotions, a random template and a random
    row of each emotion are drawn; with ``same_subject`` the B row comes from the A row's
    subject when that subject has one (as in a real before/after recording).

    Args:
        dataset: the rows to pair.
        templates: instruction templates (``{a}`` / ``{b}`` placeholders, see
            :mod:`flame_transit.text.templates`; ``TRAIN_TEMPLATES`` for training).
        rng: generator or seed.
        num_pairs: how many (default: ``len(dataset)``).
        emotions: label names to draw from (default: the basic emotions present).
        same_subject: prefer B rows of the same subject.
        synonyms: fill templates with training synonyms drawn from ``rng`` ("joyful",
            "furious", ...); ``False`` = canonical words.

    Example:
        >>> ds = make_synthetic_dataset(samples_per_emotion=4, seed=0)
        >>> pairs = instruction_pairs(ds, ["Turn this face from {a} to {b}."], 0, num_pairs=3)
        >>> text, a, b = pairs[0]
        >>> text.startswith("Turn this face from") and ds.labels[a] != ds.labels[b]
        True
    """
    if not templates:
        raise InputError("instruction_pairs needs at least one template")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    present = [dataset.label_names[i] for i in np.unique(dataset.labels)]
    if emotions is None:
        pool = [e for e in present if e != "neutral"]
    else:
        pool = [dataset.label_names[dataset.label_index(e)] for e in emotions]
        missing = [e for e in pool if e not in present]
        if missing:
            raise InputError(f"the dataset has no rows of {missing}")
    if len(pool) < 2:
        raise InputError(f"need at least two emotions to make pairs, the dataset has {pool}")
    by_label = {e: np.flatnonzero(dataset.labels == dataset.label_names.index(e)) for e in pool}
    by_label_subject: Dict[Tuple[str, int], np.ndarray] = {}
    if same_subject:
        for e, rows in by_label.items():
            for s in np.unique(dataset.subject[rows]):
                if s >= 0:
                    by_label_subject[(e, int(s))] = rows[dataset.subject[rows] == s]
    n = len(dataset) if num_pairs is None else int(num_pairs)
    out: List[Tuple[str, int, int]] = []
    for _ in range(n):
        i, j = rng.choice(len(pool), size=2, replace=False)
        a_name, b_name = pool[int(i)], pool[int(j)]
        a = int(rng.choice(by_label[a_name]))
        cand = by_label_subject.get((b_name, int(dataset.subject[a])), None) if same_subject else None
        b = int(rng.choice(cand if cand is not None and len(cand) else by_label[b_name]))
        template = templates[int(rng.integers(len(templates)))]
        out.append((render_template(template, [a_name, b_name], rng if synonyms else None), a, b))
    return out
