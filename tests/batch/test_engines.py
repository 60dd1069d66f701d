"""The batch on real cluster engines, each started by the test on 127.0.0.1 (loopback only):
a Dask LocalCluster of 2 worker processes and a local Ray instance with 2 CPUs. Skipped when
the extra is not installed (``pip install "flame_transit[dask]"`` / ``[ray]``)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections import defaultdict

import numpy as np
import pytest

from flame_transit.batch import load_counts, run_render_batch
from flame_transit.cli import main

PHOTO = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "face.jpg")
FAST = dict(fps=5.0, duration=0.2, hold=0.0, size=48, look="shaded", seed=0)
needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason='needs the [dask] extra: pip install "flame_transit[dask]"')
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason='needs the [ray] extra: pip install "flame_transit[ray]"')


def _jobs(folder, n, photos=()):
    texts = ["from sad to happy", "from anger to fear", "from fear to surprise", "from joy to disgust",
             "from contempt to sadness", "from surprise to anger"]
    return [{"row": i + 2, "image": PHOTO if i in photos else None, "instruction": texts[i % len(texts)],
             "out": str(folder / f"clip_{i}.mp4")} for i in range(n)]


def _check_models_loaded_once_per_worker(rows, max_workers=2):
    by_worker = defaultdict(list)
    for r in rows:
        assert r["status"] == "ok", r
        by_worker[r["worker"]].append(r)
    assert 1 <= len(by_worker) <= max_workers
    assert max(len(v) for v in by_worker.values()) >= 2  # some worker ran several rows ...
    for worker_rows in by_worker.values():  # ... and loaded its models for the first one only
        assert {r["loads"]["models"] for r in worker_rows} == {1}
        assert len({tuple(r["models"][:3]) for r in worker_rows}) == 1  # head, transit model, text encoder
    return by_worker


def _face_mesh_graphs() -> int:
    from flame_transit.encode import landmarks

    return len(landmarks._MESHES)


@pytest.fixture(scope="module")
def dask_cluster():
    if importlib.util.find_spec("distributed") is None:
        pytest.skip('needs the [dask] extra: pip install "flame_transit[dask]"')
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0")
    client = Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


@needs_dask
def test_dask_render_batch_reuses_models_and_resumes(dask_cluster, tmp_path):
    cluster, client = dask_cluster
    jobs = _jobs(tmp_path, 4, photos=(1,))
    result = run_render_batch(jobs, FAST, engine="dask", address=cluster.scheduler_address,
                              report=tmp_path / "report.json", progress=False)
    assert result.engine == "dask" and result.workers == 2
    _check_models_loaded_once_per_worker(result.rows)
    for worker, counts in client.run(load_counts).items():  # asked of the workers themselves
        assert counts.get("models") == 1
    assert sorted(client.run(_face_mesh_graphs).values()) in ([0, 1], [1, 1])  # one graph on a photo worker
    # resume on the cluster: a torn output is redone, the rest are skipped
    torn = tmp_path / "clip_3.mp4"
    torn.write_bytes(torn.read_bytes()[:200])
    again = run_render_batch(jobs, FAST, engine="dask", address=cluster.scheduler_address, resume=True,
                             report=tmp_path / "report.json", progress=False)
    by_row = {r["row"]: r["status"] for r in again.rows}
    assert by_row == {2: "skipped", 3: "skipped", 4: "skipped", 5: "ok"}
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["skipped"] == 3


@needs_dask
def test_dask_dataset_build_matches_local(dask_cluster, tmp_path):
    from flame_transit.data.builder import build_dataset, read_ckplus
    from flame_transit.head import load_head
    from tests.dataset.fakes import make_fake_ckplus, stub_encode

    cluster, client = dask_cluster
    items = read_ckplus(make_fake_ckplus(tmp_path / "CK+", size=96))
    head = load_head()
    here = build_dataset(items, encode_fn=stub_encode, head=head, workers=1, progress=False)
    cache = tmp_path / "partial.jsonl"
    there = build_dataset(items, encode_fn=stub_encode, head=head, engine="dask", address=cluster.scheduler_address,
                          cache_path=cache, progress=False)
    np.testing.assert_array_equal(there.expression, here.expression)
    assert list(there.paths) == list(here.paths) and there.meta["build"] == here.meta["build"]
    records = [json.loads(line) for line in cache.read_text().splitlines()[1:]]
    workers = {r["worker"] for r in records}
    assert len(workers) <= 2 and all(r["seconds"] >= 0 for r in records)
    assert all(c.get("encoder") == 1 for w, c in client.run(load_counts).items() if w and c.get("encoder"))


@needs_dask
def test_dask_cli_with_address(dask_cluster, tmp_path, capsys):
    cluster, _ = dask_cluster
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("image,instruction\n,from sad to happy\n,qqqq zzzz\n")
    code = main(["render", "--batch", str(jobs), "--out", str(tmp_path), "--engine", "dask",
                 "--address", cluster.scheduler_address, "--look", "shaded", "--fps", "5", "--duration", "0.2",
                 "--size", "48", "--quiet", "--report", str(tmp_path / "r.csv")])
    assert code == 1
    assert "1 of 2 rows failed" in capsys.readouterr().err
    assert (tmp_path / "clip_0000.mp4").exists() and not (tmp_path / "clip_0001.mp4").exists()


@needs_dask
def test_dask_dataset_cli_with_the_real_encoder(dask_cluster, tmp_path, capsys):
    from PIL import Image

    from flame_transit.data.dataset import ExpressionDataset

    cluster, _ = dask_cluster
    Image.open(PHOTO).save(tmp_path / "a.jpg")
    Image.open(PHOTO).transpose(Image.FLIP_LEFT_RIGHT).save(tmp_path / "b.jpg")
    Image.new("RGB", (64, 64), (90, 90, 90)).save(tmp_path / "flat.jpg")
    (tmp_path / "labels.csv").write_text("path,label\na.jpg,happy\nb.jpg,happy\nflat.jpg,sad\n")
    out = tmp_path / "ds.npz"
    assert main(["dataset", "--csv", str(tmp_path / "labels.csv"), "--out", str(out), "--engine", "dask",
                 "--address", cluster.scheduler_address]) == 0
    assert "encoded 2 of 3 images, skipped 1" in capsys.readouterr().out
    ds = ExpressionDataset.load(out)
    assert len(ds) == 2 and ds.meta["build"]["failures"][0][0].endswith("flat.jpg")


@needs_dask
def test_dask_engine_starts_and_stops_its_own_loopback_cluster():
    from flame_transit.batch import open_engine

    with open_engine("dask", workers=1) as engine:
        client = engine._client
        assert engine.workers == 1
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in client.scheduler_info()["workers"])
        assert sorted(engine.map_unordered(abs, [-3, 1, -2])) == [1, 2, 3]
    assert client.status == "closed"


@needs_dask
def test_dask_a_row_whose_worker_dies_fails_alone(tmp_path):
    import dask
    from dask.distributed import LocalCluster

    from flame_transit.batch import run_batch
    from tests.batch.test_runner import write_clip

    # give up on a task at its first worker death; send the worker one task at a time (so only
    # the crashing row is on it when it dies)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address="127.0.0.1:0") as cluster:
            jobs = [{"row": i + 2, "out": str(tmp_path / f"c{i}.npz"), "image": None, "instruction": t}
                    for i, t in enumerate(["a", "crash", "c"])]
            result = run_batch(jobs, write_clip, engine="dask", address=cluster.scheduler_address, progress=False,
                               report=tmp_path / "r.json")
    by_row = {r["row"]: r for r in result.rows}
    assert by_row[2]["status"] == by_row[4]["status"] == "ok"
    assert by_row[3]["status"] == "failed" and "worker running this row died" in by_row[3]["error"]
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["failed"] == 1


@needs_dask
def test_dask_unreachable_scheduler_is_one_clear_error(monkeypatch, tmp_path):
    from flame_transit.batch import engines, run_batch
    from flame_transit.errors import InputError
    from tests.batch.test_runner import write_clip

    monkeypatch.setattr(engines, "CONNECT_TIMEOUT", "2s")
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        run_batch([{"row": 2, "out": str(tmp_path / "a.npz"), "instruction": "a"}], write_clip, engine="dask",
                  address="tcp://127.0.0.1:9", progress=False)


@needs_ray
def test_ray_render_batch_reuses_models(tmp_path):
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        jobs = _jobs(tmp_path, 5, photos=(2,))
        result = run_render_batch(jobs, FAST, engine="ray", progress=False)
        assert result.engine == "ray" and result.workers == 2
        _check_models_loaded_once_per_worker(result.rows)
        assert ray.is_initialized()  # the engine leaves a cluster it did not start running
    finally:
        ray.shutdown()


def test_engine_task_is_picklable_without_the_extras():
    import pickle

    from flame_transit.batch import render_job, run_row

    task = functools.partial(run_row, functools.partial(render_job, options=dict(FAST), extras=None))
    assert pickle.loads(pickle.dumps(task)).func is run_row
