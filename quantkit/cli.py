"""`quantkit` command line: quantize, eval, compare, bench, check, tune, history.

Thin on purpose: every command calls the same API the pytest plugin uses. Bad input ends with
one line on stderr and exit code 2; a failed gate with exit code 1; accuracy not decided (too little
evidence: an interval that holds its threshold) or not measured with exit code 3.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import warnings
from importlib import metadata
from pathlib import Path

from . import providers
from .errors import NotDecidedError, QuantkitError
from .manifest import DEFAULT_CALIB_COUNT
from .options import Imgsz, cli_options, positive_int

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# 0 pass, 1 a gate failed, 2 bad input; 3: accuracy not decided (an interval holds its threshold, too little
# evidence) or, in `check`, not measured (size and latency passed)
EXIT_UNDECIDED = EXIT_UNVERIFIED = 3
FLOAT_NODES_SHOWN = 12  # `quantize` lists this many float nodes; --json lists all
DISTRIBUTION = "quantkit-yolo"


def _imgsz(values):
    return tuple(values) if values else None


def _join_imgsz(args: list[str]) -> list[str]:
    """``--imgsz H W`` -> ``--imgsz H,W``, so --imgsz takes one token and never swallows the MODEL after it."""
    args = list(args)
    for i, arg in enumerate(args[:-2]):
        if arg == "--imgsz" and args[i + 1].isdigit() and args[i + 2].isdigit():
            args[i + 1 : i + 3] = [f"{args[i + 1]},{args[i + 2]}"]
            break
    return args


def _number(text: str, ok, must: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: '{text}'") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {must}, got {text}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, lambda v: v > 0, "positive")


def _unit_float(text: str) -> float:
    return _number(text, lambda v: 0 < v < 1, "between 0 and 1")


def _counts(text: str) -> list[int]:
    from .measure.throughput import parse_counts

    try:
        return parse_counts(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def version_text() -> str:
    """quantkit's version (the installed distribution's, else the package's) and onnxruntime's."""
    import onnxruntime

    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        from . import __version__ as version
    return (
        f"quantkit {version} ({DISTRIBUTION}), onnxruntime {onnxruntime.__version__}, Python {sys.version.split()[0]}"
    )


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line, pointing at --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}: see `{self.prog} --help`\n")

    def parse_known_args(self, args=None, namespace=None):
        return super().parse_known_args(_join_imgsz(sys.argv[1:] if args is None else args), namespace)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown where there is one."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Version(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def _check_output_file(path: Path, option: str) -> None:
    """Before any work: ``path`` is not a folder and its folder takes files."""
    from .errors import OutputError
    from .files import check_writable_folder

    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder: pass a file path such as {path / 'out.json'}")
    check_writable_folder(path.parent, option)


def _print_table(rows: list[dict]) -> None:
    from .report import markdown_table

    print(markdown_table(rows))


def cmd_quantize(args) -> int:
    from .quantization.quantizer import quantize

    result = quantize(
        args.model,
        args.output,
        preset=args.preset,
        mode=args.mode,
        calib=args.calib,
        calib_count=args.calib_count,
        imgsz=_imgsz(args.imgsz),
        format=args.format,
        per_channel=args.per_channel,
        calibrate_method=args.calibrate_method,
        exclude=args.exclude,
        target_cpu=args.target_cpu,
        progress=not args.json,
    )
    if args.json:
        print(
            json.dumps(
                {
                    **result.summary(),
                    "output": result.output,
                    "notes": result.notes,
                    "float_nodes": result.float_nodes,
                    "calibration": result.calibration,
                    "tensors": result.tensors,
                }
            )
        )
        return 0
    _print_table([result.summary()])
    if result.calibration:
        c = result.calibration
        print(
            f"calibration: {c['images']} images used, {c['skipped']} unreadable skipped ({c['available']} in the "
            "folder)"
        )
    if result.float_nodes:
        shown = result.float_nodes[:FLOAT_NODES_SHOWN]
        more = len(result.float_nodes) - len(shown)
        print(
            f"kept in float ({len(result.float_nodes)}): "
            + ", ".join(shown)
            + (f", ... ({more} more; --json lists all)" if more else "")
        )
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {result.output}")
    return 0


def cmd_eval(args) -> int:
    from . import tasks
    from .measure.evaluate import evaluate
    from .measure.metrics import COCO80_TO_91

    from .manifest import load_class_map

    if args.coco80 and args.class_map:
        raise QuantkitError("--coco80 and --class-map both map classes: pass one of them")
    if args.detections:
        _check_output_file(args.detections, "--detections")
    stats = evaluate(
        args.model,
        args.images,
        args.ann,
        ep=args.ep,
        imgsz=_imgsz(args.imgsz),
        threads=args.threads,
        class_map=COCO80_TO_91 if args.coco80 else load_class_map(args.class_map),
        progress=not args.json,
        detections_out=args.detections,
        nms=args.nms,
    )
    if args.json:
        print(json.dumps(stats))
        return 0
    for line in tasks.get(stats.get("task")).eval_lines(stats):
        print(line)
    for note in stats.get("notes", []):
        print(f"note: {note}")
    return 0


def cmd_compare(args) -> int:
    from . import gates, tasks
    from .compare import run_compare

    report, results = run_compare(
        args.fp32,
        args.int8,
        args.images,
        ep=args.ep,
        imgsz=_imgsz(args.imgsz),
        threads=args.threads,
        progress=not args.json,
        conf=args.conf,
    )
    failed, undecided = gates.failures(results), gates.undecided_lines(results)
    code = 1 if failed else EXIT_UNDECIDED if undecided else 0
    if args.json:
        outcome = {0: "pass", 1: "fail", EXIT_UNDECIDED: "not decided"}[code]
        fields = ("metric", "value", "threshold", "op", "interval", "passed", "outcome")
        shown = [{k: getattr(r, k) for k in fields} for r in results]
        print(json.dumps({**report, "passed": code == 0, "outcome": outcome, "gates": shown}))
        return code
    if "agreement" in report:  # a box task: parity and agreement
        _print_box_parity(report, args.conf)
    for line in tasks.get(report["task"]).report_lines(report):
        print(line)
    for line in failed or undecided[1:]:
        print(line)
    verdict = (
        "FAIL" if failed else f"NOT DECIDED ({undecided[0]}: more images in --images DIR)" if undecided else "pass"
    )
    print(f"verdict: {verdict} — at score >= {args.conf:g}, thresholds of quantkit's table")
    return code


def _print_box_parity(report: dict, conf: float) -> None:
    """`quantkit compare`'s lines for box parity and agreement (``compare.run_compare``'s report)."""

    def num(value, digits=4, key=None):
        shown = "n/a (nothing to measure)" if value is None else f"{value:.{digits}f}"
        ci = report["ci"].get(key) if key else None
        return shown + (f"  CI{100 * report['level']:.0f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    agree, crossed = report["agreement"], report["crossings"]
    ci = f"  CI95 [{agree['ci95'][0]:.3f}, {agree['ci95'][1]:.3f}]" if agree.get("ci95") else ""
    print(
        f"agreement mAP50-95 with FP32       {num(agree['map50_95'], 3)}{ci}  "
        f"({agree['fp32_detections']} FP32 detections on {agree['images']} images)"
    )
    print(
        f"recall of FP32 detections by INT8  {num(report['recall'], 3, 'recall')}  "
        f"({report['matched']}/{report['fp32_count']})"
    )
    print(
        f"INT8 detections also in FP32       {num(report['precision'], 3, 'precision')}  "
        f"({report['matched']}/{report['int8_count']})"
    )
    print(
        f"threshold crossings (not counted)  {crossed['fp32_kept_int8_under_conf']} FP32 detections INT8 scores just "
        f"under {conf:g}, {crossed['int8_kept_fp32_under_conf']} the other way (within the score drift "
        f"{crossed['margin']:.3f})"
        + (
            f"; INT8 keeps them all at conf >= {crossed['int8_keeps_all_at_conf']:g}"
            if crossed["int8_keeps_all_at_conf"]
            else ""
        )
    )
    print(
        f"images whose best score collapsed  {num(report['collapsed_fraction'], 3)}  "
        f"({report['collapsed_images']}/{report['scored_images']})"
    )
    print(f"score drift (mean / max)           {num(report['score_drift_mean'])} / {num(report['score_drift_max'])}")
    print(f"IoU of matched boxes (mean)        {num(report['iou_mean'])}")
    print(f"max class score FP32 / INT8        {report['fp32_max_score']:.4f} / {report['int8_max_score']:.4f}")
    for group, stats in report.get("raw", {}).items():
        print(f"raw output, {group} channels: " + ", ".join(f"{k} {v:.4g}" for k, v in stats.items()))


def cmd_history(args) -> int:
    from .files import check_writable_folder, write_text_atomic
    from .report import history, markdown_table, plot_history

    rows, flags = history(args.results_dir)
    out = args.out or args.results_dir
    check_writable_folder(out)
    table = markdown_table(rows)
    flag_text = "\n".join(f"- {flag}" for flag in flags) if flags else "no changes beyond the history thresholds"
    print(table)
    print(flag_text)
    try:
        write_text_atomic(
            out / "history.md", f"# quantkit results by onnxruntime version\n\n{table}\n## Flags\n\n{flag_text}\n"
        )
        plot_history(rows, out / "history.png")
    except OSError as exc:
        raise QuantkitError(f"cannot write into --out {out} ({exc}): pass a writable folder") from None
    print(f"wrote {out / 'history.md'} and {out / 'history.png'}")
    return 1 if flags and args.fail_on_flags else 0


def cmd_bench(args) -> int:
    from . import peer
    from .measure.evaluate import model_hw
    from .measure.session import available_eps
    from .measure.throughput import best, default_counts, grid, machine

    default_eps = [p.id for p in providers.REGISTRY if not p.gpu and p.id in available_eps()]  # the CPU's EPs
    models, eps = list(dict.fromkeys(str(m) for m in args.models)), list(dict.fromkeys(args.ep or default_eps))
    hws, info = [model_hw(m, _imgsz(args.imgsz))[0] for m in models], machine()
    threads, streams = args.threads or default_counts(), args.streams or default_counts()
    peer_xml, peer_note = peer.for_bench(models[0], hws[0], args.calib)
    notes = [peer_note]
    if args.calib:  # the one-flag export every Ultralytics user has, beside quantkit's rows
        ultralytics, note = peer.ultralytics_ort(models[0], args.calib)
        notes.append(note)
        if ultralytics and str(ultralytics) not in models:
            models, hws = models + [str(ultralytics)], hws + [hws[0]]
    rows = grid(models, hws, eps, threads, streams, args.seconds)
    if peer_xml:
        rows += peer.throughput_rows(peer_xml, hws[0], threads, streams, args.seconds)
    picks = best(rows)
    if args.json:
        print(json.dumps({"rows": rows, "best": picks, "machine": info, "seconds": args.seconds, "notes": notes}))
        return 0
    _print_table(
        [
            {
                "model": r["model"],
                "ep": r["ep"],
                "threads": r["threads"],
                "streams": r["streams"],
                "latency ms": r["latency_ms"],
                "images/s": r["fps"],
                "note": f"oversubscribed ({r['threads'] * r['streams']} threads on {info['cores']} cores)"
                if r["oversubscribed"]
                else "",
            }
            for r in rows
        ]
    )
    for model, pick in picks.items():
        lat, thr = pick["latency"], pick["throughput"]
        print(
            f"{model}: best latency {lat['latency_ms']} ms ({lat['ep']}, {lat['threads']} thread(s), {lat['streams']} "
            "stream(s)); "
            f"best throughput {thr['fps']} images/s ({thr['ep']}, {thr['threads']} thread(s), {thr['streams']} "
            "stream(s))"
        )
    print(
        f"\nCPU {info['cpu']['brand']} ({info['cores']} cores), flags {', '.join(info['cpu']['flags'])}; "
        f"onnxruntime {info['onnxruntime']}; load average {info['load_before']} before the run; {args.seconds} s per "
        "setting"
    )
    for note in notes:
        print(f"note: {note}")
    return 0


def _manifest_from_args(args):
    """A manifest of the model named on the command line, else the embedded fixture's (its first case runs)."""
    from .manifest import load_manifest, single_case

    if bool(args.coco_images) != bool(args.coco_ann):
        have, lack = ("--coco-images", "--coco-ann JSON") if args.coco_images else ("--coco-ann", "--coco-images DIR")
        raise QuantkitError(f"{have} needs {lack} too: mAP is measured on annotated images, so pass both or neither")
    if args.model:
        return single_case(**{o.name: getattr(args, o.name) for o in cli_options(args.command) if o.case})
    manifest = FIXTURES / "manifest.toml"
    if not manifest.is_file():
        raise QuantkitError(
            f"no embedded fixture at {FIXTURES} (it ships with a source checkout): "
            "pass MODEL --calib DIR --coco-images DIR --coco-ann JSON"
        )
    return load_manifest(manifest)


def cmd_check(args) -> int:
    from .check import GATED, Kind, run_check, write_report
    from .files import check_writable_folder
    from .measure.throughput import describe

    check_writable_folder(args.out)
    report = run_check(_manifest_from_args(args), eps=args.ep, threads=args.threads, accuracy=not args.no_accuracy)
    _print_table(report.rows)
    if report.fastest:
        print(
            f"\nfastest deployable: {report.fastest['model']} ({report.fastest['latency ms']} ms interleaved, "
            f"{report.fastest['vs CPU FP32']}x CPU FP32)"
        )
        peer_row = next((r for r, kind in zip(report.rows, report.kinds) if kind is Kind.PEER), None)
        if peer_row:
            print(
                f"peer: {peer_row['model']} {peer_row['deploy ms']} ms (mAP50-95 {peer_row['mAP50-95']}); quantkit's "
                f"fastest deployable takes {report.fastest['deploy ms'] / peer_row['deploy ms']:.2f}x that, by block "
                "timing"
            )
        if report.fastest["tied"]:
            print(f"tied within the timings' spread: {', '.join(report.fastest['tied'])}")
        if report.fastest["kind"] == Kind.REFERENCE.value:
            print(
                "FP32 is the right answer on this machine: no INT8 model that meets the gates is faster here "
                "by more than the timings' spread"
            )
    print(f"best throughput: {describe(report.throughput)}")
    print(report.latency_story())
    for result in report.gate_results[GATED]:
        if not result.passed:
            print(result.message())
    for note in report.notes:
        print(f"note: {note}")
    paths = write_report(report, args.out)
    print("wrote " + ", ".join(str(p) for p in paths))
    print(report.evidence)
    if report.failed:
        print(f"verdict: FAIL — the {GATED} configuration failed a gate (see above)")
        return 1
    if report.undecided:
        print("\n".join(report.undecided[1:]))
        print(f"verdict: NOT DECIDED — {report.undecided[0]}; nothing failed (exit {EXIT_UNDECIDED})")
        return EXIT_UNDECIDED
    if report.accuracy == "not measured":
        print(
            f"verdict: NOT VERIFIED — {GATED} INT8 passed size and latency, but its accuracy was not measured: pass "
            "--val-images DIR (any images), --coco-images/--coco-ann, or --no-accuracy to accept size and latency only"
        )
        return EXIT_UNVERIFIED
    if report.accuracy == "skipped":
        print(f"verdict: size and latency only — {GATED} INT8 meets those gates; accuracy NOT measured (--no-accuracy)")
        return 0
    print(f"verdict: pass — {GATED} INT8 meets every gate ({report.evidence})")
    return 0


def cmd_tune(args) -> int:
    from .files import write_text_atomic
    from .report import markdown_table
    from .tune import config_toml, tune

    _check_output_file(args.output, "-o")
    result = tune(
        _manifest_from_args(args),
        ep=args.ep,
        threads=args.threads,
        thresholds={"max_map_drop_pt": args.max_drop} if args.max_drop is not None else None,
    )
    print(markdown_table([c.row() for c in result["candidates"]]))
    rewritten = (
        f"; FP32 with the Softmax rewrite every candidate carries {result['fp32_rewritten_ms']:.2f} ms, the "
        "reference of the latency ratios"
        if result["fp32_rewritten_ms"]
        else ""
    )
    print(
        f"\nFP32 {result['fp32_ms']:.2f} ms on {args.ep}, {args.threads} thread(s){rewritten}; "
        f"{result['evidence']}"
        + (
            f", mAP-drop threshold {result['threshold_pt']} pt"
            if "annotated" in result["evidence"]
            else ", agreement gate min_agreement_map"
        )
    )
    print(
        "most sensitive Convs (relative output error): "
        + ", ".join(f"{name} {err:.3g}" for name, err in result["sensitivity"][:5])
    )
    timings = result["conv_timings"]
    print(
        f"\nper-Conv INT8/FP32 on {args.ep}, {args.threads} thread(s): {sum(t.ratio < 1 for t in timings)} of "
        f"{len(timings)} Convs are faster in INT8"
    )
    slow = [t.row() for t in timings if t.name in result["float_for_speed"]]
    if slow:
        print(f"kept float for speed in {result['mixed']} (INT8 does not pay):")
        print(markdown_table(slow))
    print(
        "Convs kept float for accuracy (most sensitive first, in the -floatK candidates): "
        + ", ".join(result["float_for_accuracy"])
    )
    print(
        f"fastest deployable of FP32 and every candidate (uniform {result['uniform']}, mixed "
        f"{result['mixed'] or '-'}): {result['deployable'][1]}"
    )
    print("\nPareto set (latency ratio vs mAP drop):")
    print(markdown_table([c.row() for c in result["pareto"]]))
    chosen = result["chosen"]
    if chosen is None:
        print("no candidate meets the gates: raise --max-drop or bring better calibration images")
        return 1
    write_text_atomic(args.output, config_toml(chosen))
    if len(result["tied"]) > 1:
        print(
            f"\ntie: {', '.join(c.spec.id for c in result['tied'])} are within the timings' spread of the fastest; "
            "the most accurate of them is chosen"
        )
    print(
        f"\nchosen: {chosen.spec.id} ({chosen.ratio:.3f}x FP32 latency, {chosen.loss_pt:.2f} pt accuracy loss); "
        f"wrote its [[config]] to {args.output}"
    )
    return 0


def cmd_cache(args) -> int:
    from . import cache
    from .cache import default_cache_dir

    def size(n: int) -> str:
        return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"

    root = args.dir or default_cache_dir()
    if args.cache_command == "prune":
        removed = cache.prune(root, args.older_than, args.all, args.dry_run)
        freed = sum(r.bytes for r in removed)
        if args.json:
            print(
                json.dumps(
                    {
                        "path": str(root),
                        "dry_run": args.dry_run,
                        "bytes_freed": freed,
                        "removed": [{"path": str(r.path), "bytes": r.bytes, "reason": r.reason} for r in removed],
                    },
                    indent=2,
                )
            )
            return 0
        verb = "would remove" if args.dry_run else "removed"
        for r in removed:
            print(f"{verb} {r.path.relative_to(root)} ({r.reason}; {r.bytes} bytes)")
        print(f"{root}: {verb} {len(removed)} files, {'would free' if args.dry_run else 'freed'} {size(freed)}")
        return 0
    report = cache.info(root)
    if args.json:
        print(json.dumps(report, indent=2))
    elif not report["exists"]:
        print(f"{root}: no cache yet (set $QUANTKIT_CACHE to put it elsewhere)")
    else:
        print(f"{root}: {size(report['bytes'])} in {report['entries']} entries")
        for kind, count in report["kinds"].items():
            print(f"  {kind:<10} {count['entries']:>6} entries {size(count['bytes']):>10}")
    return 0


def _add_case_args(parser, command: str) -> None:
    """The declared options (quantkit/options.py) that ``command`` takes: for check and tune, MODEL and its data,
    all optional, defaulting to the embedded fixture."""
    for option in cli_options(command):
        option.cli.add_to(parser)


def _add_run_args(parser, ep_nargs=None) -> None:
    if ep_nargs:
        parser.add_argument(
            "--ep",
            nargs=ep_nargs,
            action="extend",
            metavar="EP",
            help=f"execution providers: {providers.listing()}; --ep cuda cpu or "
            "--ep cuda --ep cpu (default: every available one)",
        )
    else:
        parser.add_argument("--ep", default="cpu", metavar="EP", help=f"execution provider: {providers.listing()}")
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="intra-op threads per session (default: onnxruntime's choice)",
    )


def _quantize_args(parser) -> None:
    """quantize's arguments: the model, the output and the recipe's overrides."""
    from .quantization.quantizer import CALIBRATE_METHODS, FORMATS, MODES, PRESETS, TARGET_CPUS

    parser.add_argument("model", type=Path, metavar="MODEL", help="FP32 ONNX detector (read only, never modified)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUT",
        help="INT8 ONNX file to write (its folder must exist; written atomically)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="static: calibrated activations (needs --calib); weights: the 'weights' preset; dynamic: the "
        "'dynamic' preset (default: the preset's)",
    )
    parser.add_argument("--calib", type=Path, metavar="DIR", help="folder of calibration images (static mode)")
    parser.add_argument(
        "--calib-count",
        type=positive_int,
        default=DEFAULT_CALIB_COUNT,
        metavar="N",
        help="calibration images drawn from --calib with a fixed seed",
    )
    parser.add_argument("--imgsz", action=Imgsz)
    parser.add_argument(
        "--preset",
        default="default",
        choices=sorted(PRESETS, key=lambda name: name != "default"),
        help="default: static QDQ, per-channel, head in float; qoperator: the same in QOperator format; "
        "weights: int8 weights, float activations (size only, FP32 speed with "
        "session.disable_quant_qdq=1); dynamic: onnxruntime's dynamic quantization (size only); "
        "naive: onnxruntime's own defaults; ultralytics-ort: what `yolo export format=onnx int8=True` makes "
        "(both kept for contrast)",
    )
    parser.add_argument("--format", choices=FORMATS, help="static quantization format (default: the preset's)")
    parser.add_argument(
        "--per-channel",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="per-channel weight scales (default: the preset's)",
    )
    parser.add_argument(
        "--calibrate-method",
        choices=CALIBRATE_METHODS,
        help="activation range calibration (default: the preset's; auto: the head family's, percentile for YOLO26)",
    )
    parser.add_argument(
        "--target-cpu",
        choices=TARGET_CPUS,
        help="CPU class the model is for: avx2 uses 7-bit weights (reduce_range) so CPUs without VNNI "
        "cannot saturate; vnni full 8-bit; auto: this machine's class (default: the preset's)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        metavar="NODE",
        help="node names to keep in float (e.g. the head of a model whose head quantkit cannot find)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _eval_args(parser) -> None:
    """eval's arguments: the model, its annotated images and how its detections are decoded."""
    parser.add_argument("model", type=Path, metavar="MODEL", help="ONNX detector, FP32 or INT8")
    parser.add_argument("--images", type=Path, required=True, metavar="DIR", help="folder holding the annotated images")
    parser.add_argument(
        "--ann",
        type=Path,
        metavar="JSON",
        help="COCO instances JSON of those images (a classifier needs none: a folder per class labels its images)",
    )
    parser.add_argument("--imgsz", action=Imgsz)
    _add_run_args(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument(
        "--detections", type=Path, metavar="OUT.json", help="write the COCO results JSON that was scored"
    )
    parser.add_argument(
        "--class-map",
        type=Path,
        metavar="FILE",
        help="JSON/TOML of class index -> category id or name (default: match the model's class names)",
    )
    parser.add_argument(
        "--nms",
        choices=("best-class", "multi-label"),
        default="best-class",
        help="best-class: one label per box, its best class (what a deployed detector reports); "
        "multi-label: every class score > 0.001 of a box is a candidate, as `yolo val` decodes",
    )
    parser.add_argument(
        "--coco80",
        action="store_true",
        help="an 80-class COCO-trained model on the 91-id COCO annotations (the standard 80->91 map)",
    )


def _compare_args(parser) -> None:
    """compare's arguments: the FP32 and INT8 models and the images to run both on."""
    parser.add_argument("fp32", type=Path, metavar="FP32.onnx", help="the FP32 source model")
    parser.add_argument(
        "int8", type=Path, metavar="INT8.onnx", help="the INT8 model quantized from it (same input size)"
    )
    parser.add_argument("--images", type=Path, required=True, metavar="DIR", help="folder of images to run both on")
    parser.add_argument(
        "--conf",
        type=_unit_float,
        default=0.25,
        metavar="CONF",
        help="the deployed confidence: FP32's detections at or above it are what INT8 must reproduce",
    )
    parser.add_argument("--imgsz", action=Imgsz)
    _add_run_args(parser)
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def _bench_args(parser) -> None:
    """bench's arguments: the models and the grid of EPs x threads x streams."""
    parser.add_argument("models", type=Path, nargs="+", metavar="MODEL", help="ONNX models, FP32 or INT8")
    parser.add_argument(
        "--ep",
        nargs="+",
        action="extend",
        metavar="EP",
        help=f"execution providers: {providers.listing()}; --ep cuda cpu or --ep cuda --ep cpu "
        "(default: cpu, and openvino where onnxruntime-openvino is installed)",
    )
    parser.add_argument(
        "--threads", type=_counts, metavar="N,N", help="intra-op threads per session (default: 1 and every core)"
    )
    parser.add_argument("--streams", type=_counts, metavar="N,N", help="concurrent streams (default: 1 and every core)")
    parser.add_argument("--seconds", type=_positive_float, default=2.0, metavar="S", help="timed window per setting")
    parser.add_argument("--imgsz", action=Imgsz)
    parser.add_argument(
        "--calib",
        type=Path,
        metavar="DIR",
        help="calibration images: with the openvino extra, adds the OpenVINO NNCF INT8 peer of the first MODEL "
        "(its FP32 source) over the same threads x streams",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object: rows, best per model, machine, notes"
    )


def _check_args(parser) -> None:
    """check's own arguments, after the case's."""
    parser.add_argument(
        "--no-accuracy",
        action="store_true",
        help="skip validation and accept a 'size and latency only' verdict (exit 0 instead of 3)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("quantkit-report"),
        metavar="DIR",
        help="folder for report.md, report.json and the PNG plots (checked before any work)",
    )
    _add_run_args(parser, ep_nargs="+")


def _tune_args(parser) -> None:
    """tune's own arguments, after the case's."""
    parser.add_argument(
        "--max-drop",
        type=float,
        metavar="PT",
        help="mAP50-95 drop allowed, in points (default: the threshold table's max_map_drop_pt)",
    )
    parser.add_argument(
        "--ep", default="cpu", metavar="EP", help=f"execution provider to tune for: {providers.listing()}"
    )
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N", help="intra-op threads per session")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("tuned-config.toml"),
        metavar="OUT.toml",
        help="where the chosen [[config]] is written",
    )


def _cache_args(parser) -> None:
    """cache's actions, info and prune, and their arguments."""
    cache_actions = parser.add_subparsers(dest="cache_command", metavar="ACTION", help="info (the default) or prune")
    parser.set_defaults(cache_command="info", json=False, dir=None)
    for action, help in (
        ("info", "where the cache is, its size, and its entries by kind"),
        ("prune", "remove entries of other quantkit/onnxruntime versions, orphaned or corrupt files and stale locks"),
    ):
        a = cache_actions.add_parser(action, help=help, description=help, formatter_class=_Formatter)
        a.add_argument(
            "--dir", type=Path, metavar="DIR", help="the cache folder (default: $QUANTKIT_CACHE or ~/.cache/quantkit)"
        )
        a.add_argument("--json", action="store_true", help="print one JSON object")
    which = a.add_mutually_exclusive_group()
    which.add_argument(
        "--older-than", type=_positive_float, metavar="DAYS", help="also remove entries not used for DAYS days"
    )
    which.add_argument("--all", action="store_true", help="empty the cache (its CACHEDIR.TAG stays)")
    a.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")


def _history_args(parser) -> None:
    """history's arguments: the results folder and where the page goes."""
    parser.add_argument("results_dir", type=Path, metavar="RESULTS_DIR", help="the --quantkit-results folder")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="where history.md and history.png go (default: RESULTS_DIR)"
    )
    parser.add_argument("--fail-on-flags", action="store_true", help="exit 1 when a flag is raised (for CI)")


# quantkit's commands, in --help's order: name, help, description (None: the help), the function that adds the
# command's own arguments (after the declared options it takes: _add_case_args), the function it runs
COMMANDS = (
    (
        "quantize",
        "quantize an FP32 ONNX detector to INT8",
        "Quantize an FP32 ONNX detector to INT8; the preset gives the recipe, the options below override it.",
        _quantize_args,
        cmd_quantize,
    ),
    ("eval", "COCO mAP of a model on annotated images (a classifier: top-1 / top-5)", None, _eval_args, cmd_eval),
    ("compare", "detection-level parity of an INT8 model against its FP32 source", None, _compare_args, cmd_compare),
    (
        "bench",
        "latency and throughput per model x EP x intra-op threads x concurrent streams",
        "Latency and throughput per model x EP x intra-op threads x concurrent streams. Each stream is its own "
        "session in its own thread; all start together after a warm-up and run for the same --seconds. Sessions "
        "keep onnxruntime's default thread spinning (deployment defaults), unlike the interleaved timing of "
        "check and tune. With the openvino extra and --calib, the OpenVINO NNCF INT8 peer of the first MODEL "
        "runs over the same grid (threads: INFERENCE_NUM_THREADS; each stream its own compiled model).",
        _bench_args,
        cmd_bench,
    ),
    (
        "check",
        "the main job: quantize, evaluate, time, report (default: the embedded fixture)",
        None,
        _check_args,
        cmd_check,
    ),
    (
        "tune",
        "accuracy-aware search: the fastest configuration within the mAP-drop threshold",
        None,
        _tune_args,
        cmd_tune,
    ),
    (
        "cache",
        "where the cache is, its size by kind; prune what no longer serves",
        "quantkit's cache ($QUANTKIT_CACHE, else ~/.cache/quantkit): quantized models, activation ranges, "
        "rewritten FP32 models, TensorRT engines. Every entry can be rebuilt. Without ACTION: info.",
        _cache_args,
        cmd_cache,
    ),
    (
        "history",
        "results across onnxruntime versions: Markdown table, flags and a plot",
        None,
        _history_args,
        cmd_history,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """quantkit's parser: one subcommand per row of COMMANDS."""
    parser = _Parser(prog="quantkit", description=__doc__.splitlines()[0], formatter_class=_Formatter)
    parser.add_argument("--version", action=_Version, help="print quantkit's and onnxruntime's versions and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help, description, add_arguments, func in COMMANDS:
        command = sub.add_parser(name, help=help, description=description or help, formatter_class=_Formatter)
        _add_case_args(command, name)
        add_arguments(command)
        command.set_defaults(func=func)
    return parser


INTERRUPTED = "quantkit: interrupted: nothing written"


def _run(args, interrupted: list) -> int:
    """The command, with every failure as one line and an exit code (2: bad input or a failed step). A failure
    after a Ctrl-C (``interrupted``) is the interruption's doing: it is reported as the interruption."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=DeprecationWarning)
            return args.func(args)
    except Exception as exc:  # noqa: BLE001 - every failure is one line (_failure)
        if interrupted:
            raise KeyboardInterrupt from None
        return _failure(exc)


def _failure(exc: Exception) -> int:
    """One line on stderr for ``exc``; exit code 2. QUANTKIT_TRACEBACK=1 re-raises an unforeseen one."""
    if isinstance(exc, NotDecidedError):  # too little evidence: not the model's failure, nor bad input
        print(f"quantkit: {exc}", file=sys.stderr)
        return EXIT_UNDECIDED
    if isinstance(exc, QuantkitError):
        line = f"quantkit: error: {exc}"
    elif isinstance(exc, OSError):  # an output path that cannot be written, a disk that is full
        line = f"quantkit: error: {exc.strerror or exc}: {exc.filename or ''}: check the path and free space"
    else:
        if os.environ.get("QUANTKIT_TRACEBACK"):
            raise exc
        from .compat import error_line

        line = (
            f"quantkit: error: unexpected {type(exc).__name__}: {error_line(exc)}: rerun with QUANTKIT_TRACEBACK=1 "
            "and report it"
        )
    print(line, file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """The `quantkit` command. Ctrl-C at any moment, the first instant's imports included, is one line and 130."""
    interrupted = []

    def on_interrupt(signum, frame):  # remembered: what a Ctrl-C breaks on its way (a child process) is not a bug
        interrupted.append(signum)
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if main_thread else None
    try:
        args = build_parser().parse_args(argv)  # imports onnx and onnxruntime: seconds on a loaded machine
        code = _run(args, interrupted)
    except KeyboardInterrupt:  # temp folders are removed on the way out; outputs are written atomically, last
        interrupted.append(signal.SIGINT)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    if interrupted:  # also when the interruption surfaced as another error first
        print(INTERRUPTED, file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
