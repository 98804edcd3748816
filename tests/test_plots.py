"""benchmarks/plot.py turns the recorded results into the README's PNG plots."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytest.importorskip("matplotlib", reason="matplotlib comes with the bench extra")


def load_plot():
    spec = importlib.util.spec_from_file_location("plot", os.path.join(ROOT, "benchmarks", "plot.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plots_from_the_recorded_results(tmp_path):
    plot = load_plot()
    from matplotlib import image

    written = plot.main(["--results", os.path.join(ROOT, "benchmarks", "results"), "--out", str(tmp_path)])
    assert [os.path.basename(p) for p in written] == ["throughput.png", "overhead.png", "recovery.png"]
    for path in written:
        pixels = image.imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 800 and pixels.std() > 0.05  # a picture, not a blank


def test_tables_are_read_as_recorded():
    plot = load_plot()
    rows = plot.table_with(os.path.join(ROOT, "benchmarks", "results", "distributed.md"), "mode", "overhead us")
    assert {r["mode"] for r in rows} <= set(plot.MODES), "a recorded mode the plots would leave out"
    gd = {(r["envs/shard"], r["shards"]): plot.number(r["env-steps/s"]) for r in rows if r["mode"] == "gd"}
    assert len(gd) == len({(r["envs/shard"], r["shards"]) for r in rows}) > 1 and all(v > 0 for v in gd.values())
    with pytest.raises(ValueError, match="no table with columns"):
        plot.table_with(os.path.join(ROOT, "benchmarks", "results", "recovery.md"), "no such column")
