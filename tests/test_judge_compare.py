"""tools/judge_compare.py: the per-emotion hit-rate and agreement table on hand-made readings."""

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "judge_compare.py"


def _tool():
    spec = importlib.util.spec_from_file_location("judge_compare", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(a, b, first, last):
    return {"from": a, "to": b, "first": first, "last": last}


def test_agreement_table_counts_hits_and_agreement_per_instructed_emotion():
    rows = {
        "x": {"photo": [_row("anger", "fear", "anger", "fear"), _row("fear", "anger", "surprise", "anger")]},
        "y": {"photo": [_row("anger", "fear", "anger", "surprise"), _row("fear", "anger", "surprise", "sadness")]},
    }
    table = _tool().agreement_table(rows, ["photo"])
    lines = table.splitlines()
    assert lines[0] == "| emotion | x photo | y photo | agree photo |"
    # anger instructed twice (first of clip 1, last of clip 2): x right twice, y once; they agree once
    assert "| anger | 100 | 50 | 50 |" in lines
    # fear instructed twice (last of clip 1, first of clip 2): x right once, y never; both said surprise once
    assert "| fear | 50 | 0 | 50 |" in lines
    assert "| all | 75 | 25 | 50 |" in lines
