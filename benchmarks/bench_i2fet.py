"""I2FET: batched anchor generation (instructions/s on CPU) and text encoding with and without
the embedding cache.

* Anchors: :func:`flame_transit.transit.generate_anchors_batch` on the paper's five templates
  over all ordered pairs of the vocabulary's emotions, warm (model loaded, encoder built), for
  batches of 1, 64 and 512 instructions. The bundled checkpoint is used when present; otherwise
  a randomly initialised I2FET of the default configuration (same architecture, same cost).
* Text: in fresh subprocesses (cold: import + build + first encode) and in-process warm
  per-call latency, :func:`flame_transit.text.get_text_encoder` with ``cache=True`` (shipped
  vocabulary embeddings: the common path needs no text model) vs ``cache=False`` (the model).
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Dict, List, Optional

from .common import Goal, Section, cprofile_top, fmt_s, interleaved, median, paired_ratio, run_json_subprocess

GOAL_IPS = 1000.0


class _Skip(Exception):
    pass

_COLD_TEXT = r"""
import json, sys, time
t0 = time.perf_counter()
from flame_transit.text import get_text_encoder
t_import = time.perf_counter() - t0
cache = sys.argv[1] == "1"
t1 = time.perf_counter()
enc = get_text_encoder(None, cache=cache)
t_build = time.perf_counter() - t1
t2 = time.perf_counter()
emb = enc.encode(["happiness", "disgust", "Turn this face from disgust to happiness."])
t_first = time.perf_counter() - t2
print(json.dumps({"import": t_import, "build": t_build, "first_encode": t_first,
                  "total": time.perf_counter() - t0, "name": getattr(enc, "name", "?"),
                  "shape": list(emb.shape)}))
"""


def _instructions() -> List[str]:
    from flame_transit.text import EMOTIONS, PAPER_TEMPLATES, render_instruction

    pairs = list(itertools.permutations(EMOTIONS, 2))
    return [render_instruction(PAPER_TEMPLATES[i % len(PAPER_TEMPLATES)], a, b) for i, (a, b) in enumerate(pairs)]


def _transit_model(head: Any) -> Any:
    """(model, description): the bundled checkpoint, else a random-init I2FET of default size."""
    from flame_transit.transit import load_default_model

    try:
        return load_default_model(head=head), "bundled checkpoint"
    except Exception as exc:  # checkpoint not built yet: same architecture, untrained
        from flame_transit.transit.checkpoint import TransitModel
        from flame_transit.transit.i2fet import I2FET, I2FETConfig

        model = I2FET(I2FETConfig(expr_dim=head.num_expression)).eval()
        meta = dict(head_name=head.name, expression_dim=head.num_expression,
                    expression_names=list(head.expression_names), text_encoder="minilm-l6-v2", text_dim=384)
        return TransitModel(model=model, ned=None, meta=meta), f"random-init I2FET (bundled checkpoint unavailable: {exc})"


def run(quick: bool = False, rounds: Optional[int] = None) -> Section:
    import torch

    t_start = time.perf_counter()
    sec = Section("i2fet", "3. I2FET: anchor generation and text encoding (CPU)")
    rounds = rounds or (3 if quick else 7)
    from flame_transit.head import load_head
    from flame_transit.transit import generate_anchors_batch

    head = load_head()
    tm, model_desc = _transit_model(head)
    base = _instructions()
    sizes = [1, 64, 512] if not quick else [1, 256]
    batches = {n: (base * (n // len(base) + 1))[:n] for n in sizes}
    generate_anchors_batch(batches[sizes[0]], model=tm, head=head)  # warm: encoder, vocabulary cache
    fns = {f"{n}": (lambda b=batches[n]: generate_anchors_batch(b, model=tm, head=head)) for n in sizes}
    times = interleaved(fns, rounds=rounds, inner=1, warmup=1, max_seconds=20 if not quick else 6)
    table = sec.table(
        f"Warm `generate_anchors_batch` ({model_desc}; {len(base)} distinct instructions = 5 paper templates x "
        f"ordered emotion pairs, repeated; torch threads {torch.get_num_threads()}; median of {len(times[str(sizes[0])])} rounds).",
        ["batch (instructions)", "time per batch", "instructions / s", "anchors / s"])
    ips: Dict[int, float] = {}
    for n in sizes:
        t = median(times[str(n)])
        ips[n] = n / t
        table.rows.append([n, fmt_s(t), f"{n / t:,.0f}", f"{2 * n / t:,.0f}"])
    big = max(sizes)
    met = ips[big] >= GOAL_IPS
    prof = cprofile_top(fns[str(big)], n=14, sort="tottime")
    note = (f"Batched generation of {big} instructions. The model forward is one batched call; the rest is "
            "per-instruction Python (parsing, query building, packing), see the profile below.")
    if not met:
        note += " Missed: the profile's top entries bound it."
    sec.goals.append(Goal("I2FET batched anchor generation (CPU)", f"≥ {GOAL_IPS:,.0f} instructions/s",
                          f"{ips[big]:,.0f} instructions/s (batch {big})", met, note))
    sec.profiles.append((f"cProfile of one batch of {big} instructions (top by own time)", prof))
    sec.data["instructions_per_s"] = ips

    # --- text encoding --------------------------------------------------------------------
    cold: Dict[str, Dict[str, float]] = {}
    variants = (("with cache", "1"),) if quick else (("with cache", "1"), ("without cache", "0"))
    for label, flag in variants:
        try:
            cold[label] = run_json_subprocess(_COLD_TEXT, timeout=300, args=[flag])
        except Exception as exc:
            sec.notes.append(f"cold text encoding {label} failed: {exc}")
    from flame_transit.text import get_text_encoder

    warm_rows = []
    if quick:
        sec.notes.append("--quick: the text model itself (no cache) is not loaded; run without --quick for it.")
    try:
        if quick:
            raise _Skip
        cached = get_text_encoder(None, cache=True)
        raw = get_text_encoder(None, cache=False)
        phrase = ["happiness"]
        instr = ["Turn this face from disgust to happiness."]
        cached.encode(phrase), raw.encode(phrase)
        wt = interleaved({"cached: vocabulary word": lambda: cached.encode(phrase),
                          "model: vocabulary word": lambda: raw.encode(phrase),
                          "model: full instruction": lambda: raw.encode(instr)},
                         rounds=rounds * 3, inner=3, warmup=1)
        for k, v in wt.items():
            warm_rows.append([k, fmt_s(median(v))])
        r = paired_ratio(wt, "model: vocabulary word", "cached: vocabulary word")
        warm_rows.append(["speed-up of the cache (same word)", f"{r[0]:,.0f}×"])
    except _Skip:
        pass
    except Exception as exc:
        sec.notes.append(f"warm text encoding failed: {type(exc).__name__}: {exc}")
    if cold:
        t = sec.table("Cold text encoding in a fresh process (import → encoder built → first encode of 3 strings).",
                      ["encoder", "import", "build", "first encode", "total"])
        for label, d in cold.items():
            t.rows.append([f"{d.get('name', '?')} {label}", fmt_s(d["import"]), fmt_s(d["build"]),
                           fmt_s(d["first_encode"]), fmt_s(d["total"])])
    if warm_rows:
        t = sec.table("Warm per-call text encoding (same process, interleaved).", ["call", "median"])
        t.rows.extend(warm_rows)
    sec.data["text_cold"] = cold
    sec.seconds = time.perf_counter() - t_start
    return sec
