"""One table of expression classes (flame_transit.expressions): every consumer derives from it."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flame_transit import expressions as ex
from flame_transit.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def test_every_consumer_knows_every_label():
    """Fails when a label is missing anywhere: a consumer table, or a bundled artefact."""
    import torch

    from flame_transit.data import builder, dataset, synthetic
    from flame_transit.head import open_head
    from flame_transit.evaluation.perceptual import BASIC_EMOTIONS as judged
    from flame_transit.render.gallery import EXPRESSIONS as pictures
    from flame_transit.text import build_cache, templates, vocabulary

    labels, emotions = ex.LABELS, ex.EMOTIONS
    assert labels[0] == "neutral" and emotions == labels[1:]
    assert vocabulary.EXPRESSIONS == labels and tuple(vocabulary.SYNONYMS) == labels
    assert set(vocabulary.EMOJI.values()) == set(labels)
    assert tuple(templates.TRAIN_WORDS) == labels and tuple(templates.HELDOUT_WORDS) == labels
    assert dataset.LABEL_NAMES == labels and dataset.BASIC_EMOTIONS == emotions
    assert tuple(open_head.EMOTION_PROTOTYPES) == labels
    assert tuple(synthetic.EMOTION_SPECS) == emotions
    assert [name for name, _, _ in pictures][: len(labels)] == list(labels)
    assert set(judged) <= set(emotions) and set(builder.CKPLUS_LABELS.values()) <= set(labels)
    for label in labels:
        for form in ("noun", "adj"):
            word = ex.EXPRESSION_CLASSES[label].words(form)[0]
            assert vocabulary.label_of(word) == dataset.normalize_label(word) == label
        open_head.prototype_params(label)  # raises for an unknown label
    # bundled artefacts (rebuild with tools/ after adding a class)
    cache = np.load(ROOT / "flame_transit/text/data/minilm-l6-v2_vocab.npz")
    missing = set(build_cache.cache_texts()) - set(cache["texts"].tolist())
    assert not missing, f"the text cache lacks {sorted(missing)[:5]}: rebuild it (python -m flame_transit.text.build_cache)"
    ckpt = torch.load(ROOT / "flame_transit/transit/data/i2fet_open_minilm.pt", map_location="cpu", weights_only=False)
    assert tuple(ckpt["meta"]["label_names"]) == labels, "retrain the bundled I2FET checkpoint (tools/)"


def test_synonyms_are_one_vocabulary():
    from flame_transit.data.dataset import normalize_label

    assert normalize_label("joyful") == ex.label_of("joyful") == "happiness"
    assert normalize_label("Grossed-Out") == "disgust"
    for phrase, _ in ex.expression_phrases():
        assert normalize_label(phrase) == ex.label_of(phrase)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_label_lookups_agree_on_any_text(word):
    from flame_transit.data.dataset import normalize_label

    try:
        expected = ex.label_of(word)
    except KeyError:
        with pytest.raises(InputError):
            normalize_label(word)
    else:
        assert normalize_label(word) == expected


def test_is_au_head(flame_pkl):
    from flame_transit.head import load_head

    assert load_head().is_au_head and not load_head(flame_pkl).is_au_head
    assert not ex.is_action_unit_space(["exp000", "exp001"])
    assert not ex.is_action_unit_space([])


# A new class, written the way a contributor would add it to the table.
_NEW_CLASS = '''
    "boredom": ExpressionClass(
        noun=("boredom", "tedium", "ennui"),
        adj=("bored", "uninterested", "weary"),
        other=("yawny",),
        emoji="🥱",
        prototype={"AU43": 0.5, "AU15": 0.4, "AU26": 0.3},
        variation=Variation(optional={"AU15": (0.5, 0.3)}, jaw=(0.5, 0.1, 0.3)),
    ),
'''

# Runs in a fresh interpreter whose flame_transit.expressions has the edited table.
_PROBE = '''
import importlib.abc, importlib.util, json, sys
SRC, ORIGIN = sys.argv[1], sys.argv[2]

class Edited(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name == "flame_transit.expressions":
            return importlib.util.spec_from_loader(name, self, origin=ORIGIN)
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        exec(compile(SRC, ORIGIN, "exec"), module.__dict__)

sys.meta_path.insert(0, Edited())
import numpy as np
from flame_transit.data.dataset import LABEL_NAMES, normalize_label
from flame_transit.data.synthetic import EMOTION_SPECS, make_synthetic_dataset
from flame_transit.evaluation import parse_labels
from flame_transit.head.open_head import EMOTION_PROTOTYPES, EXPRESSION_NAMES, prototype_params
from flame_transit.render.gallery import EXPRESSIONS as pictures
from flame_transit.text.parse import parse_instruction
from flame_transit.text.templates import PAPER_TEMPLATES, render_instruction
from flame_transit.text.vocabulary import EXPRESSIONS, label_of

ds = make_synthetic_dataset(samples_per_emotion=4, seed=0)
e, jaw = prototype_params("boredom")
print(json.dumps({
    "vocabulary": EXPRESSIONS[-1], "label_of": label_of("Weary"), "emoji": label_of("🥱"),
    "parse": [s.label for s in parse_instruction("from happy to bored").segments],
    "template": render_instruction(PAPER_TEMPLATES[0], "boredom", "joy", rng=0, words="heldout"),
    "dataset": [LABEL_NAMES[-1], normalize_label("uninterested")],
    "synthetic": [sorted(EMOTION_SPECS["boredom"].core), ds.counts().get("boredom", 0)],
    "prototype": [float(e[EXPRESSION_NAMES.index("AU43")]), float(jaw[0]) > 0, "boredom" in EMOTION_PROTOTYPES],
    "gallery": [name for name, _, _ in pictures],
    "evaluate": parse_labels("Turn this face from tedium to happiness."),
}))
'''


def test_adding_a_class_is_one_table_entry():
    """Insert one entry into EXPRESSION_CLASSES (nothing else) and every consumer picks it up."""
    origin = Path(ex.__file__)
    src = origin.read_text(encoding="utf-8")
    node = next(n for n in ast.parse(src).body
                if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "EXPRESSION_CLASSES")
    lines = src.splitlines(keepends=True)
    close = node.end_lineno - 1  # the line holding the table's closing brace
    edited = "".join(lines[:close]) + _NEW_CLASS.lstrip("\n") + "".join(lines[close:])
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", _PROBE, edited, str(origin)], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["vocabulary"] == got["label_of"] == got["emoji"] == "boredom"
    assert got["parse"] == ["happiness", "boredom"]
    assert got["template"].startswith("Turn this face from ") and got["template"].split()[4] in ("boredom", "bored")
    assert got["dataset"] == ["boredom", "boredom"]
    assert got["synthetic"] == [["AU43"], 4]
    assert got["prototype"] == [0.5, True, True]
    assert "boredom" in got["gallery"]
    assert got["evaluate"] == ["boredom", "happiness"]
