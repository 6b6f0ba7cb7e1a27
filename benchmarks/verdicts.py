"""How often a verdict is wrong at the edge of the evidence: the decision level of every accuracy gate.

    PYTHONPATH=. python benchmarks/verdicts.py [--pool 1000] [--levels 0.8 0.9 0.95 0.99] [--case ID] [--conv NAME]

The fixture's good INT8 (static-qdq) and a planted fault (the same INT8 file with one Conv's weight scale
doubled, ``model.18.m.0.cv1``: ~2.6 pt mAP50-95 lost) are judged on many disjoint image subsets of 25, 40,
100 and 200 images, at each decision level: unlabelled subsets of a pool of images no fixture saw
(``make_dataset.py`` split "pool"; the evidence, agreement and parity gates) and annotated subsets of the
200 val images (the mAP drop beside them). A subset's verdict is FAIL when any gate fails, NOT DECIDED when
none fails and one is undecided, else pass. Prints, per level and size, how often the good model FAILs
(the false-fail rate) and how often the planted fault passes; the CPU, its INT8 flags and onnxruntime with them.
``--case`` judges another manifest case of a box task (detect, segment, pose, obb) the same way, its task's IoU
matching and scoring included; ``--conv`` names the Conv whose scale is doubled.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures"))

import make_dataset  # noqa: E402

from quantkit import compat, gates  # noqa: E402
from quantkit.manifest import load_manifest, single_case  # noqa: E402
from quantkit.measure import bootstrap, metrics  # noqa: E402
from quantkit.cpu import cpu_info  # noqa: E402
from quantkit.measure.evaluate import score  # noqa: E402
from quantkit.measure.intervals import percentile_interval, resample_weights  # noqa: E402
from quantkit.pipeline import CasePipeline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PLANTED_CONV = "/model.18/m.0/cv1/conv/Conv"


def plant_scale_fault(int8: Path, out: Path, conv: str = PLANTED_CONV) -> Path:
    """``int8`` with the weight scale of ``conv`` doubled (its DequantizeLinear's scale initializer)."""
    model = onnx.load(int8)
    node = next(n for n in model.graph.node if n.name == conv)
    dq = next(n for n in model.graph.node if node.input[1] in n.output and n.op_type == "DequantizeLinear")
    init = next(i for i in model.graph.initializer if i.name == dq.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 2, init.name))
    onnx.save(model, out)
    return out


def on_subset(table: bootstrap.MatchTable, rows: np.ndarray) -> tuple[float, np.ndarray]:
    """mAP50-95 of ``table`` on the images at ``rows`` alone (a weight of 0 on every other image is the table
    without them) and on 1000 resamples of them."""
    sub = dataclasses.replace(
        table, image_ids=[table.image_ids[r] for r in rows], tp=table.tp[rows], fp=table.fp[rows], gt=table.gt[:, rows]
    )
    point = float(sub.map50_95(np.ones((1, len(rows))))[0])
    return point, sub.resampled(resample_weights(len(rows)))


def outcome(results: list[gates.GateResult]) -> str:
    return "FAIL" if gates.failures(results) else "NOT DECIDED" if gates.undecided(results) else "pass"


class Judged:
    """FP32 and one INT8 model's detections on an image set, judged on subsets at any decision level."""

    def __init__(self, pipe: CasePipeline, spec, th: dict, annotated: bool):
        self.pipe, self.spec, self.th, self.annotated = pipe, spec, th, annotated
        self.ids = pipe.images.ids
        self.fp32 = pipe.predictions(None).dets
        self.int8 = pipe.predictions(spec).dets
        self.reference = pipe.deployed(None)
        shapes = {i: lb.shape for i, lb in zip(pipe.images.ids, pipe.images.letterboxes)}
        kept: dict = {}
        nc = pipe.hw_nc[1]
        metrics.agreement_map(self.reference, self.int8, shapes, nc, keep=kept, task=pipe.task)
        self.agreement = bootstrap.MatchTable.from_evaluator(kept["evaluator"], sorted(self.reference))
        self.order = {i: k for k, i in enumerate(sorted(self.reference))}
        if annotated:
            self.tables = [
                bootstrap.MatchTable.from_evaluator(
                    score(pipe.coco[0], pipe.predictions(s), pipe.images, pipe.classes)["evaluator"], self.ids
                )
                for s in (None, spec)
            ]

    @functools.lru_cache(maxsize=None)
    def resampled(self, subset: tuple[int, ...]) -> tuple:
        """(agreement mAP and its resamples, FP32 - INT8 mAP drop and its resamples or None) on ``subset``."""
        rows = np.array([self.order[i] for i in subset])
        agreement = on_subset(self.agreement, rows)
        if not self.annotated:
            return agreement, None
        index = {i: k for k, i in enumerate(self.ids)}
        (f, fs), (q, qs) = (on_subset(t, np.array([index[i] for i in subset])) for t in self.tables)
        return agreement, (100 * (f - q), 100 * (fs - qs), f, q)

    def gates(self, subset: list[int], level: float) -> list[gates.GateResult]:
        conf, th = self.pipe.case.conf, self.th
        (point, values), drop = self.resampled(tuple(subset))
        agreement = {
            "images": len(subset),
            "fp32_detections": sum(len(self.reference[i]) for i in subset),
            "map50_95": point if point >= 0 else None,
            "ci": percentile_interval(values, level, (0.0, 1.0)),
            "level": level,
        }
        par = metrics.parity(
            [self.fp32[i] for i in subset],
            [self.int8[i] for i in subset],
            conf,
            th["match_iou"],
            th["collapse_score_ratio"],
            level,
            self.pipe.task,
        )
        results = gates.check_agreement(agreement, th, "verdicts") + gates.check_parity(par, th, "verdicts")
        if drop is not None:
            boot = {"ci": percentile_interval(drop[1], level), "level": level, "images": len(subset), "resamples": 1000}
            th_map = {**th, "max_map_drop_pt_small": 100.0, "max_class_ap_drop_pt": 100.0}
            map_gates = gates.check_map({"map50_95": drop[2]}, {"map50_95": drop[3]}, th_map, "verdicts", boot)
            results = map_gates[1:] + results
        return results


def chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[k : k + size] for k in range(0, len(ids) - size + 1, size)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1000, help="unseen images to draw unlabelled subsets from")
    parser.add_argument("--levels", type=float, nargs="+", default=[0.80, 0.90, 0.95, 0.99])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 40, 100, 200])
    parser.add_argument("--case", help="the manifest case to judge (default: the first)")
    parser.add_argument("--conv", default=PLANTED_CONV, help="the Conv whose weight scale the planted fault doubles")
    args = parser.parse_args(argv)
    manifest = load_manifest(ROOT / "fixtures" / "manifest.toml")
    case = next(c for c in manifest.cases if c.id == args.case) if args.case else manifest.cases[0]
    spec = manifest.spec("static-qdq")
    th = manifest.thresholds_for(case, spec)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        make_dataset.write_split("pool", Path(tmp), args.pool)
        good_val = CasePipeline(case, progress=False)
        int8 = good_val.model_path(spec)
        planted = plant_scale_fault(int8, Path(tmp) / "planted.onnx", args.conv)
        unlabelled = single_case(case.model, case.calib, val_images=Path(tmp) / "pool" / "images").cases[0]
        sets = {
            "unlabelled pool": [
                Judged(CasePipeline(unlabelled, progress=False), spec, th, False),
                Judged(
                    CasePipeline(unlabelled, progress=False, model_paths=lambda s: planted if s else case.model),
                    spec,
                    th,
                    False,
                ),
            ],
            "annotated val": [
                Judged(good_val, spec, th, True),
                Judged(
                    CasePipeline(case, progress=False, model_paths=lambda s: planted if s else case.model),
                    spec,
                    th,
                    True,
                ),
            ],
        }
        cpu = cpu_info()
        print(
            f"CPU {cpu['brand']} [{', '.join(cpu['flags']) or 'no INT8 dot-product flags'}], CPU EP, onnxruntime "
            f"{compat.ORT_VERSION}, {time.strftime('%Y-%m-%d')}; case {case.id}; planted: {args.conv} weight scale x2"
        )
        print("| images | subsets | level | good: pass / not decided / FAIL | planted: pass / not decided / FAIL |")
        print("|---|---|---|---|---|")
        for name, (good, bad) in sets.items():
            for size in args.sizes:
                subsets = chunks(good.ids, size)
                if not subsets:
                    continue
                for level in args.levels:
                    counts = []
                    for judged in (good, bad):
                        seen = [outcome(judged.gates(s, level)) for s in subsets]
                        counts.append(" / ".join(str(seen.count(o)) for o in ("pass", "NOT DECIDED", "FAIL")))
                    print(f"| {name}: {size} | {len(subsets)} | {level:g} | {counts[0]} | {counts[1]} |")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
