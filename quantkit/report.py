"""Tables and plots of results: Markdown tables, the onnxruntime-version history, PNG charts.

Reads only results files (JSON written by ``pytest --quantkit-results DIR``), never onnxruntime, so
it runs anywhere. matplotlib is imported inside the plot functions, on the Agg backend.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .errors import QuantkitError
from .files import temp_beside
from .manifest import THRESHOLDS

_VERSION_DIR = re.compile(r"^\d+(\.\d+)*")


def _decimals(values) -> int:
    """4 decimals below 1, 3 below 10, else 2, by the largest magnitude among the floats."""
    top = max((abs(v) for v in values if isinstance(v, float)), default=0.0)
    return 4 if top < 1 else 3 if top < 10 else 2


def _cell(value, decimals: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{_decimals([value]) if decimals is None else decimals}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A GitHub Markdown table; columns default to every key in order of first appearance. Floats get
    the same 2-4 decimals down a column, chosen by the column's largest magnitude."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    decimals = {col: _decimals(row.get(col) for row in rows) for col in columns}
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(col), decimals[col]) for col in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def version_key(version: str) -> tuple[int, ...]:
    """'1.15.1' -> (1, 15, 1), so 1.9 sorts before 1.15."""
    return tuple(int(part) for part in _VERSION_DIR.match(version).group(0).split("."))


def ops_summary(ops: dict | None) -> str:
    """The quantized ops in one phrase: 'QLinearConv 63', 'ConvInteger 63' or 'Q 218 / DQ 344'."""
    if not ops:
        return ""
    for op in ("QLinearConv", "ConvInteger"):
        if ops.get(op):
            return f"{op} {ops[op]}"
    return f"Q {ops.get('QuantizeLinear', 0)} / DQ {ops.get('DequantizeLinear', 0)}"


def _row(version: str, record: dict) -> dict:
    parity, latency = record.get("parity") or {}, record.get("latency") or {}
    drop = record.get("map_drop_pt")
    if drop is None and record.get("fp32_map50_95") is not None and record.get("int8_map50_95") is not None:
        drop = round(100 * (record["fp32_map50_95"] - record["int8_map50_95"]), 3)
    int8_bytes = record.get("int8_bytes")
    return {
        "onnxruntime": version,
        "case": record.get("case"),
        "config": record.get("config"),
        "ep": record.get("ep"),
        "compression": record.get("compression"),
        "int8 MB": int8_bytes / 1e6 if int8_bytes is not None else None,
        "fp32 mAP50-95": record.get("fp32_map50_95"),
        "int8 mAP50-95": record.get("int8_map50_95"),
        "mAP drop pt": drop,
        "parity recall": parity.get("recall"),
        "int8 max score": parity.get("int8_max_score"),
        "latency ratio": latency.get("ratio"),
        "CPU class": (record.get("machine") or {}).get("class") or "not recorded",
        "quantize s": record.get("quantize_seconds"),
        "quantized ops": ops_summary(record.get("ops")),
        "_ops": record.get("ops"),
        "_machine": _machine_class(record.get("machine")),
    }


def _machine_class(machine: dict | None) -> tuple | None:
    """What a latency ratio is comparable under: CPU, INT8 flags, cores (None: a record from before
    quantkit stored it)."""
    return None if not machine else (machine.get("cpu"), tuple(machine.get("int8_flags") or ()), machine.get("cores"))


def _changed(old, new, limit: float, relative: bool) -> bool:
    if old is None or new is None:
        return False
    if relative:
        return old != 0 and abs(new - old) / abs(old) > limit
    return abs(new - old) > limit


def _flags(prev: dict, row: dict) -> list[str]:
    where = f"{row['onnxruntime']} {row['case']}/{row['config']}/{row['ep']}"
    checks = (
        ("mAP drop pt", THRESHOLDS["history_map_drop_change_pt"], False),
        ("compression", THRESHOLDS["history_compression_change"], True),
    )
    if prev["_machine"] == row["_machine"]:  # latency ratios compare only on the same machine class
        checks += (("latency ratio", THRESHOLDS["history_latency_ratio_change"], True),)
    flags = [
        f"{where}: {name} {_cell(prev[name])} -> {_cell(row[name])} (since {prev['onnxruntime']})"
        for name, limit, relative in checks
        if _changed(prev[name], row[name], limit, relative)
    ]
    old_ops, new_ops = prev["_ops"], row["_ops"]
    if old_ops is not None and new_ops is not None and old_ops != new_ops:
        diff = ", ".join(
            f"{op} {old_ops.get(op, 0)} -> {new_ops.get(op, 0)}"
            for op in sorted(set(old_ops) | set(new_ops))
            if old_ops.get(op, 0) != new_ops.get(op, 0)
        )
        flags.append(f"{where}: ops {diff} (since {prev['onnxruntime']})")
    return flags


def _stored_records(results_dir: Path):
    """(onnxruntime version, record) of every results file: ``<version>/*.json`` written by ``--quantkit-results``,
    and the pair records of pytest-benchmark runs (``.benchmarks``: ``<platform>/NNNN_*.json``, each INT8 latency
    benchmark's ``extra_info``; per run the fewest-threads one of a pair, per version the newest run)."""
    for folder in (d for d in results_dir.iterdir() if d.is_dir() and _VERSION_DIR.match(d.name)):
        for path in sorted(folder.glob("*.json")):
            yield folder.name, _read_json(path)
    newest: dict = {}
    for path in sorted(results_dir.glob("*/[0-9][0-9][0-9][0-9]_*.json"), key=lambda p: p.name):
        run: dict = {}
        for bench in _read_json(path).get("benchmarks", []):
            record = (bench.get("extra_info") or {}).get("quantkit_record")
            if record and bench.get("name", "").endswith("/int8"):
                key = (record["onnxruntime"], record["case"], record["config"], record["ep"])
                if key not in run or record["latency"]["threads"] < run[key]["latency"]["threads"]:
                    run[key] = record
        newest.update(run)
    for (version, *_), record in newest.items():
        yield version, record


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QuantkitError(f"unreadable results file {path} ({exc}): delete it or rerun the suite") from None


def history(results_dir: str | Path) -> tuple[list[dict], list[str]]:
    """One row per onnxruntime version x (case, config, ep) from ``results_dir/<version>/*.json`` or from the
    pytest-benchmark runs saved there (``_stored_records``), and one-line flags where a row moved against the
    previous version's row for the same (case, config, ep) (the latency ratio only where both were timed on the
    same CPU, INT8 flags and core count)."""
    results_dir = Path(results_dir)
    fix = (
        f"run `pytest --quantkit-results {results_dir}` (or `tox`) to write results first, or point at the "
        "pytest-benchmark storage (.benchmarks) of the suite's runs"
    )
    if not results_dir.is_dir():
        raise QuantkitError(f"results folder not found: {results_dir}: {fix}")
    rows = [_row(version, record) for version, record in _stored_records(results_dir)]
    if not rows:
        raise QuantkitError(f"no results files under {results_dir}: {fix}")
    rows.sort(key=lambda r: (version_key(r["onnxruntime"]), str(r["case"]), str(r["config"]), str(r["ep"])))
    flags, previous = [], {}
    for row in rows:
        key = (row["case"], row["config"], row["ep"])
        if key in previous:
            flags += _flags(previous[key], row)
        previous[key] = row
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows], flags


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | Path) -> None:
    """Save a figure as PNG through a temporary file, then close it."""
    path = Path(path)
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)


# by the row's kind (check.Kind values: decided from gate results, never read back from the verdict text)
VERDICT_COLOURS = {
    "reference": "#4c72b0",
    "contrast": "#8da0cb",
    "pass": "#2a9d4b",
    "size only": "#7f7f7f",
    "not verified": "#ff7f0e",
    "size and latency only": "#bcbd22",
    "FAIL": "#d62728",
    "peer": "#9467bd",
    "other": "#000000",
}
_MARKERS = "osD^vP*Xh<>p"


def _kind(row: dict) -> str:
    """The row's ``kind`` as a VERDICT_COLOURS key ("other" without one)."""
    return row.get("kind") if row.get("kind") in VERDICT_COLOURS else "other"


def plot_history(rows: list[dict], path: str | Path, thresholds: dict | None = None) -> None:
    """PNG with two panels over onnxruntime versions: INT8 mAP50-95 drop and INT8/FP32 latency ratio,
    one line per case/config(/ep when several); the gate thresholds drawn, points beyond them in red."""
    th = {**THRESHOLDS, **(thresholds or {})}
    plt = _pyplot()
    versions = sorted({r["onnxruntime"] for r in rows}, key=version_key)
    several_eps = len({r.get("ep") for r in rows}) > 1
    series: dict[str, list[dict]] = {}
    for row in rows:
        label = f"{row.get('case')}/{row.get('config')}" + (f"/{row.get('ep')}" if several_eps else "")
        series.setdefault(label, []).append(row)
    fig, axes = plt.subplots(2, 1, figsize=(max(9.0, 3.5 + 0.8 * len(versions)), 7.5), sharex=True)
    colours = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 3]  # no red: red means failure
    for ax in axes:
        ax.set_prop_cycle(color=colours)
    limits = {"mAP drop pt": th["max_map_drop_pt"], "latency ratio": None}  # latency gates differ per config
    for ax, column, ylabel in (
        (axes[0], "mAP drop pt", "INT8 mAP50-95 drop (pt)"),
        (axes[1], "latency ratio", "INT8 / FP32 latency"),
    ):
        for label, points in series.items():
            xy = [
                (versions.index(r["onnxruntime"]), r[column], limits[column] is not None and r[column] > limits[column])
                for r in points
                if r.get(column) is not None
            ]
            if xy:
                ax.plot([p[0] for p in xy], [p[1] for p in xy], marker="o", label=label)
                over = [p for p in xy if p[2]]
                if over:
                    ax.scatter(
                        [p[0] for p in over],
                        [p[1] for p in over],
                        s=120,
                        facecolors="none",
                        edgecolors=VERDICT_COLOURS["FAIL"],
                        linewidths=2,
                        zorder=3,
                    )
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    axes[0].axhline(
        th["max_map_drop_pt"],
        color=VERDICT_COLOURS["FAIL"],
        linestyle="--",
        linewidth=1,
        label=f"gate: max_map_drop_pt {th['max_map_drop_pt']}",
    )
    axes[1].axhline(1.0, color="grey", linestyle="--", linewidth=1, label="INT8 as fast as FP32")
    for ax in axes:
        if ax.lines:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[1].set_xticks(range(len(versions)), versions, rotation=45)
    axes[1].set_xlabel("onnxruntime")
    cases = ", ".join(sorted({str(r.get("case")) for r in rows}))
    fig.suptitle(
        f"quantkit results by onnxruntime version: {cases}\n(red rings: mAP drop beyond the gate)", fontsize="medium"
    )
    fig.tight_layout()
    _save(plt, fig, path)


def plot_latency_vs_map(
    rows: list[dict], path: str | Path, threshold: float | None = None, title: str = "", column: str = "mAP50-95"
) -> None:
    """Scatter PNG: x latency (ms), y the accuracy ``column`` (mAP50-95; a classifier's top-1), one point per row
    (keys 'model', 'latency ms', ``column``, optional 'kind' (check.Kind value) for its colour), named in the legend
    with its numbers.

    The accuracy axis is zoomed to the rows near the top (and ``threshold``, the lowest passing INT8 value,
    drawn as a line); rows far below are drawn on the bottom edge as downward triangles, their value in the legend.
    """
    plt = _pyplot()
    points = [r for r in rows if r.get("latency ms") is not None and r.get(column) is not None]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if points:
        values = [r[column] for r in points]
        floor = threshold if threshold is not None else max(values) - 0.05
        shown = [v for v in values if v >= floor - 0.02] + ([threshold] if threshold is not None else [])
        low, high = min(shown), max(shown)
        pad = max(0.15 * (high - low), 0.002)
        bottom = low - pad
        for i, row in enumerate(points):
            y, off_scale = row[column], row[column] < bottom
            label = f"{row.get('model')}: {row['latency ms']:.2f} ms, {column} {y:.4f}" + (
                " (off scale)" if off_scale else ""
            )
            if row.get("verdict"):
                label += f" — {row['verdict']}"
            ax.scatter(
                row["latency ms"],
                bottom + pad / 4 if off_scale else y,
                s=80,
                zorder=3,
                marker="v" if off_scale else _MARKERS[i % len(_MARKERS)],
                color=VERDICT_COLOURS[_kind(row)],
                edgecolors="black",
                linewidths=0.5,
                label=label,
            )
        if threshold is not None:
            ax.axhline(
                threshold,
                color=VERDICT_COLOURS["FAIL"],
                linestyle="--",
                linewidth=1,
                label=f"gate: lowest passing INT8 {column} {threshold:.4f}",
            )
        ax.set_ylim(bottom, high + pad)
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    ax.set_xlabel("latency (ms, median)")
    ax.set_ylabel(column)
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"latency vs {column}", fontsize="medium")
    fig.tight_layout()
    _save(plt, fig, path)


def plot_sizes(rows: list[dict], path: str | Path, title: str = "") -> None:
    """Bar chart PNG of 'size MB' per row['model'], coloured by row['kind'] where present, each bar
    labelled with its size and its ratio to the first row's; rows without a size are left out."""
    plt = _pyplot()
    sized = [r for r in rows if r.get("size MB") is not None]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 + 1.1 * len(sized)), 4.8))
    labels = [str(r.get("model")) for r in sized]
    bars = ax.bar(range(len(sized)), [r["size MB"] for r in sized], color=[VERDICT_COLOURS[_kind(r)] for r in sized])
    base = sized[0]["size MB"] if sized else None

    def ratio(r) -> str:  # against the first row; none where the size is the same to two decimals
        factor = base / r["size MB"] if r["size MB"] else 1.0
        if round(factor, 2) == 1:
            return ""
        return f"\n{factor:.2f}x smaller" if factor > 1 else f"\n{1 / factor:.2f}x larger"

    ax.bar_label(bars, [f"{r['size MB']:.2f}" + ratio(r) for r in sized], fontsize="small")
    ax.set_xticks(range(len(sized)), labels, rotation=20, ha="right")
    kinds = {_kind(r) for r in sized}
    if any(r.get("kind") for r in sized):  # every colour drawn is in the legend
        from matplotlib.patches import Patch

        ax.legend(
            handles=[
                Patch(color=colour, label=f"row verdict: {kind}")
                for kind, colour in VERDICT_COLOURS.items()
                if kind in kinds
            ],
            fontsize="small",
            loc="upper right",
        )
    ax.set_ylabel("size (MB)")
    ax.margins(y=0.2)
    ax.set_title(title or "model sizes", fontsize="medium")
    fig.tight_layout()
    _save(plt, fig, path)
