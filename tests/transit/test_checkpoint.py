"""Checkpoints: metadata, round trip, mismatch errors, training determinism, CLI config."""

from __future__ import annotations

import json
import os

import pytest
import torch

from flame_transit.errors import AssetError, CheckpointMismatchError, InputError
from flame_transit.transit.checkpoint import load_checkpoint, save_checkpoint
from flame_transit.transit.train import TrainConfig, train

from .conftest import tiny_train_config
from .helpers import tiny_head

PHOTO = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "face.jpg")


def test_metadata(tiny_checkpoint, small_head):
    tm = load_checkpoint(tiny_checkpoint)
    meta = tm.meta
    assert meta["head_name"] == small_head.name
    assert meta["text_encoder"] == "hash:32" and meta["text_dim"] == 32
    assert meta["expression_dim"] == small_head.num_expression
    assert list(meta["expression_names"]) == list(small_head.expression_names)
    assert meta["library_version"] and meta["training_data"]["rows"] > 0
    assert meta["train_config"]["model"] == "i2fet"
    assert tm.kind == "i2fet" and tm.ned is not None
    assert set(meta["training_data"]["split"]) == {"train", "val", "test"}


def test_round_trip_same_outputs(tiny_checkpoint, tmp_path):
    tm = load_checkpoint(tiny_checkpoint)
    copy = save_checkpoint(tmp_path / "copy.pt", tm.model, meta=tm.meta, ned=tm.ned)
    tm2 = load_checkpoint(copy)
    for k, v in tm.model.state_dict().items():
        assert torch.equal(v, tm2.model.state_dict()[k]), k
    text = torch.randn(4, 32)
    a = tm.model.sample(text, text, torch.zeros(4, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    b = tm2.model.sample(text, text, torch.zeros(4, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_half_precision_checkpoint_is_smaller(tiny_checkpoint, tmp_path):
    tm = load_checkpoint(tiny_checkpoint)
    p32 = save_checkpoint(tmp_path / "f32.pt", tm.model, meta=tm.meta, ned=tm.ned)
    p16 = save_checkpoint(tmp_path / "f16.pt", tm.model, meta=tm.meta, ned=tm.ned, half=True)
    assert p16.stat().st_size < 0.75 * p32.stat().st_size
    tm16 = load_checkpoint(p16)
    assert all(v.dtype != torch.float16 for v in tm16.model.state_dict().values())


def test_head_mismatch_raises(tiny_checkpoint):
    other = tiny_head(seed=1, name="another-head")
    with pytest.raises(CheckpointMismatchError, match="another-head"):
        load_checkpoint(tiny_checkpoint, head=other)


def test_text_encoder_mismatch_raises(tiny_checkpoint):
    from flame_transit.text import get_text_encoder

    with pytest.raises(CheckpointMismatchError, match="hash:32"):
        load_checkpoint(tiny_checkpoint, text_encoder=get_text_encoder("hash:64"))
    with pytest.raises(CheckpointMismatchError):
        load_checkpoint(tiny_checkpoint, text_encoder="minilm-l6-v2")
    load_checkpoint(tiny_checkpoint, text_encoder="hash:32")  # the right one passes


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(AssetError):
        load_checkpoint(bad)
    with pytest.raises(AssetError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(AssetError, match="not a flame_transit.*flame-transit train"):
        load_checkpoint(tmp_path / "other.pt")
    # a photo passed as --model: one short line saying what to pass, not torch's advice to
    # load it with weights_only=False
    photo = tmp_path / "face.jpg"
    photo.write_bytes(open(PHOTO, "rb").read())
    with pytest.raises(AssetError) as info:
        load_checkpoint(photo)
    message = str(info.value)
    assert "flame-transit train" in message and "weights_only" not in message and "\n" not in message


def test_unknown_text_encoder_name_is_a_typo_not_a_missing_model():
    from flame_transit.transit.checkpoint import default_checkpoint_path

    with pytest.raises(InputError, match="unknown text encoder 'minlm'"):
        default_checkpoint_path(None, "minlm")
    with pytest.raises(CheckpointMismatchError, match="no bundled transit model"):
        default_checkpoint_path(None, "hash:16")  # a real encoder without a bundled model


def test_training_is_deterministic(tmp_path, small_head, hash_encoder, tiny_dataset):
    kw = dict(epochs=1, ned=False)
    a = train(tiny_train_config(tmp_path / "a.pt", **kw), dataset=tiny_dataset, head=small_head, text_encoder=hash_encoder)
    b = train(tiny_train_config(tmp_path / "b.pt", **kw), dataset=tiny_dataset, head=small_head, text_encoder=hash_encoder)
    sa, sb = load_checkpoint(a).model.state_dict(), load_checkpoint(b).model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("kind", ["no_ifed", "no_vertex", "baseline"])
def test_ablation_kinds_train(kind, tmp_path, small_head, hash_encoder, tiny_dataset):
    p = train(tiny_train_config(tmp_path / f"{kind}.pt", model=kind, epochs=1, ned=False),
              dataset=tiny_dataset, head=small_head, text_encoder=hash_encoder)
    tm = load_checkpoint(p)
    assert tm.kind == ("baseline" if kind == "baseline" else "i2fet")
    if kind == "no_ifed":
        assert tm.model.ifed is None
    if kind == "no_vertex":
        assert "vertex" not in tm.meta["metrics"]["test_loss"]


def test_config_validation_and_cli_parsing(tmp_path):
    with pytest.raises(InputError):
        TrainConfig(model="nope")
    with pytest.raises(InputError):
        TrainConfig(epochs=0)
    with pytest.raises(InputError, match="unknown"):
        TrainConfig.from_dict({"epochs": 2, "bogus": 1})
    from flame_transit.cli import _train_config, build_parser

    config = tmp_path / "train.json"
    config.write_text(json.dumps({"ned": False, "model": "no_ifed", "epochs": 3}))
    args = build_parser().parse_args(["train", "--config", str(config), "--out", "x.pt", "--epochs", "7", "--lr", "0.01"])
    cfg = _train_config(args)
    assert (cfg.epochs, cfg.lr, cfg.ned, cfg.model, cfg.batch_size) == (7, 0.01, False, "no_ifed", 128)


def test_config_nests_the_model_configs():
    from flame_transit.transit.i2fet import I2FETConfig

    cfg = TrainConfig.from_dict({"epochs": 2, "i2fet": {"z_expr": 8, "ifed": {"d_model": 32}}, "baseline": {"hidden": 64}})
    assert isinstance(cfg.i2fet, I2FETConfig) and (cfg.i2fet.z_expr, cfg.i2fet.ifed.d_model) == (8, 32)
    assert cfg.conditioning == cfg.i2fet.conditioning == "segment" and cfg.baseline.hidden == 64
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # JSON round trip
    with pytest.raises(InputError, match="nested"):
        TrainConfig.from_dict({"z_expr": 8})  # the old flat key says where it went
    with pytest.raises(InputError, match="derived"):
        TrainConfig(i2fet={"expr_dim": 50})  # set from the data
    with pytest.raises(InputError, match="conditioning"):
        TrainConfig(i2fet={"conditioning": "telepathy"})


def test_default_config_matches_paper_protocol():
    cfg = TrainConfig()
    assert cfg.batch_size == 128 and cfg.test_fraction == 0.1 and cfg.val_fraction == 0.1
    assert (cfg.i2fet.ifed.param_layers, cfg.i2fet.ifed.text_layers, cfg.i2fet.ifed.caft_layers) == (2, 1, 1)


def test_evaluate_helpers_score_a_model(tiny_checkpoint, tiny_dataset):
    from flame_transit.evaluation import train_classifier
    from flame_transit.evaluation import eval_cases, evaluate_model

    clf = train_classifier(tiny_dataset, seed=0)
    cases = eval_cases("paper")[:20]
    r = evaluate_model(str(tiny_checkpoint), cases, clf)
    assert r.n_cases == 20 and 0.0 <= r.acc2 <= r.acc1 <= 1.0
    assert len(eval_cases("heldout")) == 630
