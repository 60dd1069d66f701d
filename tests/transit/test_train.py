"""TrainConfig checks that run before any training work (flame_transit/transit/train.py)."""

from __future__ import annotations

import pytest

from flame_transit.errors import InputError
from flame_transit.transit.train import TrainConfig


@pytest.mark.parametrize("out", ["m.txt", "model", "model.pt.bak", "ckpt.pth"])
def test_checkpoint_path_needs_the_suffix_the_loader_reads(out):
    with pytest.raises(InputError) as info:
        TrainConfig(out=out)
    msg = str(info.value)
    assert out in msg and ".pt" in msg


@pytest.mark.parametrize("out", ["m.pt", "runs/M.PT"])
def test_pt_checkpoint_paths_pass(out):
    assert TrainConfig(out=out).out == out


def test_an_unwritable_checkpoint_place_fails_before_training(tmp_path, monkeypatch):
    import flame_transit.transit.train as train_mod

    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(train_mod, "_seed_all", no_training)  # the first step of the training work
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="a_file"):
        train_mod.train(TrainConfig(out=str(blocker / "m.pt"), epochs=1))
