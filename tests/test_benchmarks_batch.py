"""Keeps benchmarks/bench_batch.py from rotting: the local engine only, 2 rows."""


def test_batch_benchmark_local_rows(monkeypatch):
    from benchmarks import bench_batch

    sec = bench_batch.run(rows=2, engines=(), rounds=1)
    table = sec.tables[0]
    assert [row[0] for row in table.rows] == ["local"]
    local = sec.data["times"]["local"][0]
    assert local["batch_s"] > 0 and local["model_loads"] == 1 and local["used"] == 1
    assert table.rows[0][5] == f"{2 / local['batch_s']:.2f}"  # clips/s of the 2 rows


def test_batch_benchmark_refuses_unknown_engines(capsys):
    from benchmarks import bench_batch

    assert bench_batch.main(["--engines", "spark"]) == 2
    assert "unknown engine" in capsys.readouterr().err
