"""`quantkit bench` and quantkit.measure.throughput on tiny graphs: JSON schema, the grid, best picks, bad input.

No timing is asserted beyond "positive": the numbers depend on the machine and its load.
"""

import itertools
import json
import os

import onnxruntime
import pytest

import graphs
from quantkit import QuantkitError
from quantkit.cli import build_parser, main
from quantkit.measure.session import available_eps
from quantkit.providers import IDS as EPS
from quantkit.measure.throughput import best, best_throughput, default_counts, measure, parse_counts

ROW_KEYS = {"model", "ep", "threads", "streams", "latency_ms", "fps", "oversubscribed"}


def bench_json(capsys, *args) -> dict:
    assert main(["bench", *map(str, args), "--seconds", "0.2", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_json_has_a_row_per_model_ep_threads_streams(tiny_model, tiny_dynamic, capsys):
    report = bench_json(capsys, tiny_model, tiny_dynamic, "--imgsz", "32", "--threads", "2,1,2", "--streams", "1,2")
    rows = report["rows"]
    assert len(rows) == 8
    assert all(set(r) == ROW_KEYS for r in rows)
    assert sorted((r["model"], r["ep"], r["threads"], r["streams"]) for r in rows) == sorted(
        itertools.product([str(tiny_model), str(tiny_dynamic)], ["cpu"], [1, 2], [1, 2])
    )
    assert all(r["latency_ms"] > 0 and r["fps"] > 0 for r in rows)
    assert all(r["oversubscribed"] == (r["threads"] * r["streams"] > os.cpu_count()) for r in rows)
    for model, pick in report["best"].items():
        mine = [r for r in rows if r["model"] == model]
        assert pick["latency"]["latency_ms"] == min(r["latency_ms"] for r in mine)
        assert pick["throughput"]["fps"] == max(r["fps"] for r in mine)
    assert set(report["best"]) == {str(tiny_model), str(tiny_dynamic)}
    machine = report["machine"]
    assert machine["onnxruntime"] == onnxruntime.__version__ and machine["cores"] == os.cpu_count()
    assert machine["cpu"]["brand"] and isinstance(machine["cpu"]["flags"], list)


def test_bench_defaults_and_table(tiny_model, capsys):
    assert main(["bench", str(tiny_model), "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    counts = default_counts()
    assert counts == sorted({1, os.cpu_count()})
    assert out.count(f"| {tiny_model} | cpu |") == len(counts) ** 2
    assert f"{tiny_model}: best latency" in out and "best throughput" in out
    assert f"onnxruntime {onnxruntime.__version__}" in out


def test_best_picks_lowest_latency_and_highest_throughput():
    rows = [
        {"model": "a", "latency_ms": 5.0, "fps": 200.0, "id": 1},
        {"model": "a", "latency_ms": 9.0, "fps": 300.0, "id": 2},
        {"model": "b", "latency_ms": 7.0, "fps": 100.0, "id": 3},
        {"model": "a", "latency_ms": 6.0, "fps": 250.0, "id": 4},
    ]
    picks = best(rows)
    assert {m: (p["latency"]["id"], p["throughput"]["id"]) for m, p in picks.items()} == {"a": (1, 2), "b": (3, 3)}


@pytest.mark.parametrize("argv", [["--ep", "cuda", "cpu"], ["--ep", "cuda", "--ep", "cpu"]])
def test_ep_takes_several_values_either_way(argv):
    assert build_parser().parse_args(["bench", "m.onnx", *argv]).ep == ["cuda", "cpu"]


def test_parse_counts_sorts_and_deduplicates():
    assert parse_counts("4,1,2,1") == [1, 2, 4]


def _unavailable_ep() -> str:
    missing = [ep for ep in EPS if ep not in available_eps()]
    if not missing:
        pytest.skip("every execution provider is available here")
    return missing[0]


def _exit_code(argv: list[str]) -> int:
    """main()'s return code, or the code of a usage error (argparse exits)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--ep", "nope"], "unknown execution provider 'nope'"),
        (["--ep", "cpu", "UNAVAILABLE"], "is not available in this onnxruntime"),
        (["--threads", "0"], "argument --threads: takes positive integers"),
        (["--streams", "1,x"], "argument --streams: takes positive integers"),
        (["--seconds", "0"], "argument --seconds: must be positive"),
        (["--imgsz", "1", "2", "3"], "unrecognized arguments: 3"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_table(tiny_model, capsys, extra, message):
    extra = [_unavailable_ep() if a == "UNAVAILABLE" else a for a in extra]
    assert _exit_code(["bench", str(tiny_model), "--seconds", "0.2", *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert err.startswith("quantkit") and ": error: " in err and message in err and "\n" not in err, err


def test_bad_models_exit_2(tiny_model, tiny_dynamic, tmp_path, capsys):
    for model, message in ((tmp_path / "absent.onnx", "absent.onnx"), (tiny_dynamic, "pass --imgsz")):
        assert main(["bench", str(tiny_model), str(model), "--seconds", "0.2"]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_a_run_that_fails_in_a_stream_is_an_error(tmp_path):
    """The classifier loads but its [1, 10] input refuses the image tensor: the streams stop, nothing hangs."""
    model = graphs.save(graphs.classifier(), tmp_path / "clf.onnx")
    with pytest.raises(QuantkitError, match="clf.onnx failed on 'cpu' during the run"):
        measure(model, (32, 32), "cpu", threads=1, streams=2, seconds=0.2)


def test_best_throughput_skips_what_does_not_run(tiny_model, tmp_path):
    clf = graphs.save(graphs.classifier(), tmp_path / "clf.onnx")
    eps = ["cpu"] + [ep for ep in EPS if ep not in available_eps()][:1]
    row = best_throughput([("tiny", tiny_model, ep) for ep in eps] + [("clf", clf, "cpu")], (32, 32), seconds=0.1)
    assert row["model"] == "tiny" and row["ep"] == "cpu" and row["fps"] > 0
    assert row["threads"] in default_counts() and row["streams"] in default_counts()
    assert best_throughput([("clf", clf, "cpu")], (32, 32), seconds=0.1) is None


@pytest.mark.parametrize("offered, expected", [(["cpu"], ["cpu"]), (["cuda", "openvino", "cpu"], ["cpu", "openvino"])])
def test_bench_times_the_openvino_ep_by_default_where_it_is_installed(
    offered, expected, tiny_model, capsys, monkeypatch
):
    """onnxruntime-openvino's EP runs the same QDQ model beside the CPU EP; GPU EPs only when asked for."""
    import quantkit.measure.session
    import quantkit.measure.throughput

    asked = []
    monkeypatch.setattr(quantkit.measure.session, "available_eps", lambda: offered)
    monkeypatch.setattr(quantkit.measure.throughput, "grid", lambda models, hws, eps, *rest: asked.append(eps) or [])
    bench_json(capsys, tiny_model, "--threads", "1", "--streams", "1")
    assert asked == [expected]
