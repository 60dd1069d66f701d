"""A tiny trained transit checkpoint (tiny head, hash text encoder) shared by the tests."""

from __future__ import annotations

import pytest

from .helpers import tiny_head


def tiny_train_config(out, **kw):
    from flame_transit.transit.train import TrainConfig

    base = dict(
        out=str(out), epochs=3, batch_size=64, lr=3e-3, seed=0, samples_per_emotion=30, text_pool_size=120,
        i2fet={"z_expr": 8, "z_pose": 2, "hidden": 32, "pose_hidden": 16,
               "ifed": {"d_model": 16, "n_heads": 2, "ff_dim": 32, "cond_dim": 16}},
        baseline={"hidden": 32}, ned_epochs=2, vertex_subset=40, progress=False, num_threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="session")
def small_head():
    return tiny_head()


@pytest.fixture(scope="session")
def hash_encoder():
    from flame_transit.text import get_text_encoder

    return get_text_encoder("hash:32")


@pytest.fixture(scope="session")
def tiny_dataset(small_head):
    from flame_transit.data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(small_head, samples_per_emotion=30, seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, small_head, hash_encoder, tiny_dataset):
    from flame_transit.transit.train import train

    out = tmp_path_factory.mktemp("transit") / "tiny.pt"
    return train(tiny_train_config(out), dataset=tiny_dataset, head=small_head, text_encoder=hash_encoder)
