"""quantkit.report and `quantkit history` on synthetic results folders (no model is run)."""

import json
import os
import stat

import pytest

from quantkit import QuantkitError
from quantkit import quantize
from quantkit.cli import main
from quantkit.manifest import THRESHOLDS
from quantkit.files import write_text_atomic
from quantkit.report import history, markdown_table, plot_history, plot_latency_vs_map, plot_sizes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QDQ_OPS = {"Conv": 1, "DequantizeLinear": 344, "QuantizeLinear": 218}


def record(case="m", config="static-qdq", drop=1.0, ratio=0.8, ops=None, compression=3.8, latency=True) -> dict:
    """A results file as test_record writes it, with the numbers a test plants."""
    rec = {
        "case": case,
        "config": config,
        "ep": "cpu",
        "onnxruntime": "?",
        "fp32_bytes": 12_000_000,
        "int8_bytes": int(12_000_000 / compression),
        "compression": compression,
        "quantize_seconds": 4.2,
        "fp32_map50_95": 0.6,
        "int8_map50_95": 0.6 - drop / 100,
        "fp32_map50": 0.8,
        "int8_map50": 0.79,
        "map_drop_pt": drop,
        "parity": {"recall": 0.93, "int8_max_score": 0.97},
        "ops": dict(QDQ_OPS if ops is None else ops),
        "float_nodes": 3,
        "notes": [],
    }
    if latency:
        rec["latency"] = {"ep": "cpu", "threads": 1, "fp32_ms": 10.0, "int8_ms": 10.0 * ratio, "ratio": ratio}
    return rec


def write_results(root, version, *records):
    folder = root / version
    folder.mkdir(parents=True, exist_ok=True)
    for rec in records:
        (folder / f"{rec['case']}--{rec['config']}.json").write_text(json.dumps({**rec, "onnxruntime": version}))


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000


def test_markdown_table_formats_floats_by_column_and_missing_cells():
    table = markdown_table(
        [{"a": 0.123456, "b": "x|y", "d": 0.5}, {"a": 12.3456, "c": None, "d": 0.25}, {"a": 1.23456, "b": 3, "d": 1.5}]
    )
    assert table.splitlines() == [
        "| a | b | d | c |",
        "|---|---|---|---|",
        "| 0.12 | x\\|y | 0.500 |  |",
        "| 12.35 |  | 0.250 |  |",
        "| 1.23 | 3 | 1.500 |  |",
    ]
    assert "| 0.1235 |" in markdown_table([{"mAP": 0.123456}])


def test_markdown_table_keeps_given_columns():
    assert markdown_table([{"a": 1, "b": 2}], ["b"]).splitlines() == ["| b |", "|---|", "| 2 |"]


def test_write_text_atomic_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "out.md"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["out.md"]


def test_history_sorts_versions_numerically_and_skips_other_folders(tmp_path):
    for version in ("1.15.1", "1.9.0", "1.24.4", "1.9"):
        write_results(tmp_path, version, record())
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "stray.json").write_text("{}")
    rows, flags = history(tmp_path)
    assert [r["onnxruntime"] for r in rows] == ["1.9", "1.9.0", "1.15.1", "1.24.4"]
    assert flags == []


def test_history_row_columns(tmp_path):
    write_results(
        tmp_path,
        "1.20.1",
        record(compression=4.0),
        record(config="qop", ops={"QLinearConv": 63, "QuantizeLinear": 1}),
        record(config="dyn", ops={"ConvInteger": 63}),
    )
    rows, _ = history(tmp_path)
    by_config = {r["config"]: r for r in rows}
    qdq = by_config["static-qdq"]
    assert qdq["int8 MB"] == pytest.approx(3.0)
    assert (qdq["mAP drop pt"], qdq["parity recall"], qdq["int8 max score"], qdq["latency ratio"]) == (
        1.0,
        0.93,
        0.97,
        0.8,
    )
    assert qdq["quantized ops"] == "Q 218 / DQ 344"
    assert by_config["qop"]["quantized ops"] == "QLinearConv 63"
    assert by_config["dyn"]["quantized ops"] == "ConvInteger 63"


def test_history_flags_planted_changes_only(tmp_path):
    step = THRESHOLDS["history_map_drop_change_pt"]
    write_results(
        tmp_path, "1.17.3", record(case="a"), record(case="b"), record(case="c"), record(case="d"), record(case="e")
    )
    write_results(
        tmp_path,
        "1.18.1",
        record(case="a", drop=1.0 + 2 * step),
        record(case="b", ratio=1.3),
        record(case="c", ops={**QDQ_OPS, "QuantizeLinear": 219}),
        record(case="d", compression=3.5),
        record(case="e", drop=1.0 + step / 2, ratio=0.85, compression=3.79),
    )
    _, flags = history(tmp_path)
    assert len(flags) == 4, flags
    text = "\n".join(flags)
    assert "1.18.1 a/static-qdq/cpu: mAP drop pt 1.000 -> 2.000" in text
    assert "1.18.1 b/static-qdq/cpu: latency ratio 0.8000 -> 1.300" in text
    assert "1.18.1 c/static-qdq/cpu: ops QuantizeLinear 218 -> 219" in text
    assert "1.18.1 d/static-qdq/cpu: compression 3.800 -> 3.500" in text
    assert not [f for f in flags if " e/" in f]


def test_history_compares_with_previous_version_only(tmp_path):
    write_results(tmp_path, "1.9", record(drop=1.0))
    write_results(tmp_path, "1.15.1", record(drop=3.0))
    write_results(tmp_path, "1.16.3", record(drop=3.1))
    _, flags = history(tmp_path)
    assert flags == ["1.15.1 m/static-qdq/cpu: mAP drop pt 1.000 -> 3.000 (since 1.9)"]


def test_history_tolerates_missing_fields(tmp_path):
    write_results(tmp_path, "1.15.1", record(latency=False))
    write_results(tmp_path, "1.16.3", {"case": "m", "config": "static-qdq", "ep": "cpu"})
    rows, flags = history(tmp_path)
    assert rows[0]["latency ratio"] is None and rows[1]["mAP drop pt"] is None
    assert flags == []
    markdown_table(rows)


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_written_files_get_the_permissions_open_gives(umask, tmp_path, tiny_model):
    """0666 less the umask, as open() gives, not mkstemp's 0600: reports, plots, history, quantized models."""
    results = tmp_path / "results"
    write_results(results, "1.15.1", record())
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "report.md", "x")
        plot_sizes([{"model": "int8", "size MB": 3.2}], tmp_path / "sizes.png")
        assert main(["history", str(results), "--out", str(tmp_path / "history")]) == 0
        quantize(tiny_model, tmp_path / "q.onnx", mode="dynamic", progress=False)
    finally:
        os.umask(old)
    for path in ("report.md", "sizes.png", "history/history.md", "history/history.png", "q.onnx"):
        assert stat.S_IMODE((tmp_path / path).stat().st_mode) == 0o666 & ~umask, path


def test_history_reads_the_suites_pytest_benchmark_runs(tmp_path):
    """The suite's latency records saved by pytest-benchmark (.benchmarks/<platform>/NNNN_*.json): one row per
    onnxruntime version and pair from the INT8 benchmark's record (the fewest threads; the newest run per
    version), flagged like results files."""

    def run(number, version, drop, threads=(1, 2)):
        benches = [
            {
                "name": f"m/static-qdq/cpu/{t}t/{p}",
                "extra_info": {
                    "quantkit_record": {
                        **record(drop=drop),
                        "onnxruntime": version,
                        "latency": {"threads": t, "ratio": 0.8},
                    }
                },
            }
            for t in threads
            for p in ("fp32", "int8")
        ]
        path = tmp_path / "store" / "Linux-CPython-3.11-64bit" / f"{number}_main.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"benchmarks": benches}))

    run("0001", "1.31.0", drop=0.4)
    run("0002", "1.32.0", drop=9.0)  # replaced by the newer run of the same version
    run("0003", "1.32.0", drop=1.2)
    rows, flags = history(tmp_path / "store")
    assert [(r["onnxruntime"], r["mAP drop pt"]) for r in rows] == [("1.31.0", 0.4), ("1.32.0", 1.2)]
    assert len(flags) == 1 and "mAP drop pt 0.4000 -> 1.200 (since 1.31.0)" in flags[0]


@pytest.mark.parametrize("make", [lambda p: p / "absent", lambda p: p])
def test_history_missing_or_empty_folder_is_an_error(tmp_path, make):
    with pytest.raises(QuantkitError, match="--quantkit-results"):
        history(make(tmp_path))


def test_plots_are_png(tmp_path):
    write_results(tmp_path / "r", "1.15.1", record(), record(config="dyn", latency=False))
    write_results(tmp_path / "r", "1.32.0", record(drop=0.4, ratio=0.7), record(config="dyn", latency=False))
    rows, _ = history(tmp_path / "r")
    plot_history(rows, tmp_path / "h.png")
    models = [
        {"model": "fp32", "latency ms": 12.0, "mAP50-95": 0.61, "size MB": 12.1, "kind": "reference"},
        {"model": "int8", "latency ms": 8.5, "mAP50-95": 0.60, "size MB": 3.2, "kind": "pass"},
        {"model": "naive", "latency ms": 14.0, "mAP50-95": 0.0, "size MB": 3.3, "kind": "FAIL"},
        {"model": "no-latency", "latency ms": None, "mAP50-95": 0.5, "size MB": None},
    ]
    plot_latency_vs_map(models, tmp_path / "scatter.png", threshold=0.595, title="latency vs mAP50-95: m")
    plot_sizes(models, tmp_path / "sizes.png")
    for name in ("h.png", "scatter.png", "sizes.png"):
        assert_png(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.png", "r", "scatter.png", "sizes.png"]


def test_sizes_plot_names_every_colour_and_gives_no_ratio_of_one(tmp_path, monkeypatch):
    """The size-only bars (grey) are in the legend; a row as large as FP32 is not '1.00x smaller'."""
    import quantkit.report

    figures = []
    monkeypatch.setattr(quantkit.report, "_save", lambda plt, fig, path: figures.append(fig))
    rows = [
        {"model": "FP32 @ cpu", "size MB": 12.13, "kind": "reference"},
        {"model": "FP32, Softmax rewritten @ cpu", "size MB": 12.13, "kind": "contrast"},
        {"model": "INT8 static-qdq @ cpu", "size MB": 3.38, "kind": "pass"},
        {"model": "INT8 weights @ cpu", "size MB": 3.17, "kind": "size only"},
        {"model": "INT8 naive @ cpu", "size MB": 3.31, "kind": "FAIL"},
        {"model": "INT8 dynamic @ cpu", "size MB": 3.21, "kind": "size only"},
        {"model": "INT8 qoperator @ cpu", "size MB": 3.3, "kind": "not verified"},
    ]
    plot_sizes(rows, tmp_path / "sizes.png")
    ax = figures[0].axes[0]
    legend = {patch.get_label(): patch.get_facecolor() for patch in ax.get_legend().get_patches()}
    assert set(legend) == {
        f"row verdict: {kind}" for kind in ("reference", "contrast", "pass", "size only", "FAIL", "not verified")
    }
    assert {bar.get_facecolor() for bar in ax.patches} == set(legend.values())
    labels = [text.get_text() for text in ax.texts]
    assert labels[:2] == ["12.13", "12.13"] and labels[2] == "3.38\n3.59x smaller"


def test_cli_history_writes_table_flags_and_plot(tmp_path, capsys):
    results, out = tmp_path / "results", tmp_path / "out"
    write_results(results, "1.15.1", record())
    write_results(results, "1.16.3", record(ratio=1.4))
    assert main(["history", str(results), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "| onnxruntime | case | config |" in stdout
    assert "1.16.3 m/static-qdq/cpu: latency ratio" in stdout
    assert "latency ratio 0.8000 -> 1.400" in (out / "history.md").read_text()
    assert_png(out / "history.png")


def test_cli_history_defaults_out_to_results_dir(tmp_path, capsys):
    write_results(tmp_path, "1.15.1", record())
    assert main(["history", str(tmp_path)]) == 0
    assert "no changes beyond the history thresholds" in capsys.readouterr().out
    assert (tmp_path / "history.md").is_file() and (tmp_path / "history.png").is_file()


def test_cli_history_missing_folder_exits_2(tmp_path, capsys):
    assert main(["history", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("quantkit: error: results folder not found") and "\n" not in err


def test_docs_threshold_table_is_the_threshold_table():
    """docs/thresholds.md's table is the one built from the declarations (``manifest.threshold_table``): every key of
    THRESHOLDS with its default, only those, each row's text the declared one."""
    from pathlib import Path

    from quantkit.manifest import THRESHOLDS, threshold_table

    readme = (Path(__file__).resolve().parents[1] / "docs" / "thresholds.md").read_text(encoding="utf-8")
    table = readme[readme.index("| threshold | default | gate |") :].split("\n\n")[0]
    rows = {cells[1].strip("` "): cells[2].strip() for line in table.splitlines()[2:] if (cells := line.split("|"))}
    assert set(rows) == set(THRESHOLDS)
    for key, value in THRESHOLDS.items():
        assert float(rows[key]) == value, f"docs/thresholds.md says {key} = {rows[key]}, THRESHOLDS says {value}"
    assert table == threshold_table(), "paste quantkit.manifest.threshold_table() into docs/thresholds.md"


@pytest.mark.parametrize("ratio, code", [(1.4, 1), (0.8, 0)])
def test_cli_history_fail_on_flags_exits_1_only_when_flagged(tmp_path, capsys, ratio, code):
    write_results(tmp_path, "1.15.1", record())
    write_results(tmp_path, "1.16.3", record(ratio=ratio))
    assert main(["history", str(tmp_path), "--fail-on-flags"]) == code
    stdout = capsys.readouterr().out
    assert ("1.16.3 m/static-qdq/cpu: latency ratio 0.8000 -> 1.400" in stdout) == bool(code)
    assert ("no changes beyond the history thresholds" in stdout) == (not code)
    assert (tmp_path / "history.md").is_file()


def test_history_compares_latency_only_on_the_same_machine(tmp_path):
    from quantkit.report import history

    base = {"case": "c", "config": "k", "ep": "cpu", "compression": 3.6, "map_drop_pt": 0.7, "int8_bytes": 3_000_000}
    zen = {"cpu": "AMD EPYC", "int8_flags": ["avx2", "avx512_vnni"], "cores": 2}
    for version, ratio, machine in (
        ("1.30.0", 0.45, zen),
        ("1.31.0", 0.70, {**zen, "cpu": "Intel Xeon"}),
        ("1.32.0", 1.05, {**zen, "cpu": "Intel Xeon"}),
    ):
        (tmp_path / version).mkdir()
        (tmp_path / version / "c--k--cpu.json").write_text(
            json.dumps({**base, "latency": {"ratio": ratio}, "machine": machine})
        )
    _, flags = history(tmp_path)
    assert flags == ["1.32.0 c/k/cpu: latency ratio 0.7000 -> 1.050 (since 1.31.0)"]
