"""Keeps ``python -m benchmarks`` from rotting: the LBS part, --quick, tiny repeats."""

import json

import pytest

pytest.importorskip("smplx")


def test_lbs_benchmark_runs_and_reports(tmp_path):
    from benchmarks.__main__ import main

    out, raw = tmp_path / "RESULTS.md", tmp_path / "results.json"
    rc = main(["--quick", "--only", "lbs", "--rounds", "2", "--inner", "1", "--out", str(out), "--json", str(raw)])
    assert rc == 0
    text = out.read_text()
    assert "## Machine" in text and "LBS speed-up vs smplx FLAME" in text
    assert "MET" in text  # a verdict, either way
    data = json.loads(raw.read_text())
    results = data["sections"]["lbs"]["data"]["results"]
    typical = next(v for k, v in results.items() if k.startswith("typical/cpu/"))
    # same model, same inputs: ours agrees with smplx's FLAME layer
    assert typical["max_diff"] <= 1e-5
    assert set(typical["median_s"]) == {"ours", "smplx.FLAME", "smplx.lbs.lbs"}
    assert all(t > 0 for t in typical["median_s"].values())


def test_unknown_section_is_refused(tmp_path, capsys):
    from benchmarks.__main__ import main

    assert main(["--only", "nope", "--out", str(tmp_path / "R.md")]) == 2
    assert "unknown section" in capsys.readouterr().err
    assert not (tmp_path / "R.md").exists()


def test_clips_benchmark_renders_the_batch_and_compares_with_the_paper():
    from benchmarks import bench_clips

    sec = bench_clips.run(clips=2, size=64, renderer="gl")
    (table,) = sec.tables
    (row,) = table.rows
    assert row[0] == 2 and row[1] == 77  # the CLI's default clip: transition and holds
    assert float(row[4]) > 0 and row[6].endswith(("faster", "slower"))
    assert sec.data["device"].startswith("gl:") and sec.data["batch_s"] > 0
    assert str(bench_clips.PAPER_S_PER_VIDEO) in sec.title
