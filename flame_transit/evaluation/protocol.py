"""The paper's evaluation protocol applied to transit models (``flame-transit eval``).

Scoring itself (classifier, cases, Acc1 / Acc2 / G-mean, tables, confusion matrices) lives in
the other modules of :mod:`flame_transit.evaluation`; this module supplies the generators: trained checkpoints wrapped
as ``instructions -> anchors`` functions, and the ablation run that trains I2FET, I2FET without
IFED, I2FET without the vertex loss and the MotionCLIP-style baseline on the same data.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

from ..io_utils import user_path
from .cases import eval_cases

__all__ = ["generator_for", "evaluate_model", "run_paper_protocol", "ABLATIONS"]

log = logging.getLogger(__name__)

#: display name -> TrainConfig.model
ABLATIONS: Dict[str, str] = {
    "I2FET": "i2fet",
    "I2FET w/o IFED": "no_ifed",
    "I2FET w/o vertex loss": "no_vertex",
    "MotionCLIP-style": "baseline",
}


def generator_for(model: Any, *, seed: int = 0, temperature: float = 1.0) -> Callable[[List[str]], List[Any]]:
    """``instructions -> list[Anchors]`` for a checkpoint path or loaded model (batched)."""
    from ..transit.anchors import generate_anchors_batch, resolve_model

    tm = resolve_model(model)

    def generate(texts: List[str]) -> List[Any]:
        return list(generate_anchors_batch(texts, model=tm, seed=seed, temperature=temperature))

    return generate


def evaluate_model(model: Any, cases: Sequence[Any], classifier: Any, *, seed: int = 0, name: str = "") -> Any:
    """:class:`flame_transit.evaluation.scoring.EvalResult` of one model on ``cases``."""
    from .scoring import evaluate_generator

    return evaluate_generator(generator_for(model, seed=seed), cases, classifier, batch_size=256, name=name)


def run_paper_protocol(out: str = "eval_results", *, quick: bool = False, seed: int = 0,
                       include_bundled: bool = True, progress: bool = True, segment_text: str = "raw") -> str:
    """Train the ablations on synthetic FACS data and score them (markdown written to ``out``).

    The ablations condition on the segment's own words (``segment_text="raw"``): the text
    embedding then has to carry the meaning, as in the paper, so the three case sets (paper
    templates, held-out templates, held-out synonyms) separate the models. The bundled
    checkpoint (canonical segment text: the parser resolves synonyms) is scored alongside.

    ``quick`` uses few epochs and little data (a smoke run; numbers are not meaningful).
    Returns the markdown of all tables.
    """
    from .classifier import default_classifier
    from .report import run_ablation_table
    from ..data.synthetic import make_synthetic_dataset
    from ..head import load_head
    from ..text import get_text_encoder
    from ..transit.train import TrainConfig, train

    head = load_head()
    encoder = get_text_encoder()
    data = make_synthetic_dataset(head, samples_per_emotion=120 if quick else 1000, seed=seed)
    classifier = default_classifier(head)
    out_dir = user_path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    models: Dict[str, Callable] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind in ABLATIONS.items():
            cfg = TrainConfig(out=str(Path(tmp) / f"{kind}.pt"), model=kind, seed=seed, ned=False,
                              segment_text=segment_text, epochs=3 if quick else 30,
                              text_pool_size=300 if quick else 3000, progress=progress)
            path = train(cfg, dataset=data, head=head, text_encoder=encoder)
            models[name] = generator_for(str(path), seed=seed)
        if include_bundled:
            try:
                from ..transit.checkpoint import default_checkpoint_path

                models["I2FET (bundled checkpoint)"] = generator_for(str(default_checkpoint_path(head)), seed=seed)
            except Exception as exc:  # no bundled model for this head: skip the row
                log.warning("bundled checkpoint not evaluated: %s", exc)
        parts = []
        for which, title in (("paper", "Paper templates (5 × 42 ordered pairs)"),
                             ("heldout", "Held-out templates (never seen in training)"),
                             ("heldout_words", "Held-out templates and held-out synonyms")):
            md = run_ablation_table(models, eval_cases(which, seed), classifier, out_dir=out_dir / which,
                                    progress=progress, title=title)
            parts.append(md)
    text = "\n\n".join(parts)
    from ..io_utils import atomic_write_text

    atomic_write_text(out_dir / "README.md", text)
    print(text)
    return text
