"""Classification: one ranked list of classes per image (``Detections`` whose rows are every class, highest
probability first, each box the whole image). Scored on a folder-per-class set (Ultralytics' classify layout:
``val/<class name>/*.jpg``) as top-1 / top-5 accuracy, and against FP32 on any images as top-1 agreement; every
figure decided from its per-image bootstrap interval (paired for the drops), like the detectors' gates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..gates.base import Gate, GateResult, Target, Threshold
from ..measure.intervals import LEVEL, paired_interval, ratio_interval
from ..preprocess import centre_crop_image, list_images
from .base import Detections, Task

TOP_K = 5


def labelled_images(folder: str | Path) -> list[tuple[Path, str]] | None:
    """(image, class name) of a folder-per-class set, sorted; None when ``folder`` holds no class folders."""
    folder = Path(folder)
    classes = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    items = [(image, c.name) for c in classes for image in list_images(c)]
    return items or None


def class_indices(labels: list[str], names: dict[int, str]) -> np.ndarray:
    """Folder names -> the model's class index (names matched ignoring case); DatasetError naming the unknown."""
    index = {str(n).strip().lower(): int(i) for i, n in names.items()}
    unknown = sorted({lab for lab in labels if lab.strip().lower() not in index})
    if unknown:
        raise DatasetError(
            f"class folders {unknown[:5]} name no class of the model ({', '.join(map(str, names.values()))}): "
            "name each folder after the class its images show"
        )
    return np.array([index[lab.strip().lower()] for lab in labels], np.int64)


def rank_of(dets: Detections, label: int) -> int:
    """Where ``label`` stands in one image's ranking (0: top-1); past the end when it is absent."""
    hits = np.flatnonzero(dets.classes == label)
    return int(hits[0]) if hits.size else len(dets) + TOP_K


def accuracy(fp32: list[Detections], int8: list[Detections], labels: np.ndarray, level: float = LEVEL) -> dict:
    """Top-1 and top-5 accuracy of both models and the drops in points, each with its paired interval."""
    out = {"images": len(labels)}
    for k, name in ((1, "top1"), (TOP_K, "top5")):
        hit_f = np.array([rank_of(d, lab) < k for d, lab in zip(fp32, labels)], np.float64)
        hit_q = np.array([rank_of(d, lab) < k for d, lab in zip(int8, labels)], np.float64)
        drop = paired_interval(lambda f, q: 100 * (f - q) / len(labels), hit_f, hit_q, level=level)
        out[name] = {
            "fp32": float(hit_f.mean()) if hit_f.size else None,
            "int8": float(hit_q.mean()) if hit_q.size else None,
            "drop_pt": float(100 * (hit_f.mean() - hit_q.mean())) if hit_f.size else None,
            "ci": drop,
        }
    return out


def agreement(fp32: list[Detections], int8: list[Detections], level: float = LEVEL) -> dict:
    """Share of images where INT8's top-1 class is FP32's, and the mean change of FP32's top-1 probability."""
    same = np.array([len(f) and len(q) and f.classes[0] == q.classes[0] for f, q in zip(fp32, int8)], np.float64)
    drift = np.array(
        [
            abs(float(f.scores[0]) - float(q.scores[rank_of(q, int(f.classes[0]))])) if len(f) and len(q) else 1.0
            for f, q in zip(fp32, int8)
        ],
        np.float64,
    )
    ones = np.ones(len(same))
    return {
        "images": len(same),
        "top1_agreement": float(same.mean()) if same.size else None,
        "top1_disagreements": int(same.size - same.sum()),
        "prob_drift_mean": float(drift.mean()) if drift.size else None,
        "ci": {
            "top1_agreement": ratio_interval(same, ones, level),
            "prob_drift_mean": ratio_interval(drift, ones, level),
        },
        "level": level,
    }


class Classify(Task):
    name = "classify"
    scored_on = ("top1",)
    labels = {"top1": "top1"}
    uses_boxes = False
    fit = staticmethod(centre_crop_image)  # Ultralytics' classify_transforms, not the detector's letterbox
    loss_threshold = "max_top1_drop_pt"
    accuracy_column, drop_metric = "top-1", "top1_drop_pt"

    def labelled_images(self, folder: Path) -> list[tuple[Path, str]] | None:
        return labelled_images(folder)

    def accuracy_of(self, dets: list[Detections], labels: list[str], names: dict[int, str]) -> dict:
        """Top-1 / top-5 accuracy with their intervals, and top-1 per class (`quantkit eval` on a folder per class)."""
        index = class_indices(labels, names)
        per_class = {
            names[c]: float(np.mean([rank_of(d, c) == 0 for d, lab in zip(dets, index) if lab == c]))
            for c in sorted(set(index.tolist()))
        }
        out = {"task": self.name, "images": len(dets), "per_class": per_class}
        for name in ("top1", "top5"):
            hits = np.array([rank_of(d, lab) < (1 if name == "top1" else TOP_K) for d, lab in zip(dets, index)])
            out[name] = float(hits.mean())
            out[f"{name}_ci"] = ratio_interval(hits.astype(np.float64), np.ones(len(hits)))
        return out

    def eval_lines(self, stats: dict) -> list[str]:
        ci = {k: stats[f"{k}_ci"] for k in ("top1", "top5")}
        return [
            f"top-1 {stats['top1']:.4f} [{ci['top1'][0]:.4f}, {ci['top1'][1]:.4f}]  top-5 {stats['top5']:.4f}  "
            f"({stats['images']} images labelled by their folders)",
            "top-1 per class: " + ", ".join(f"{k} {v:.3f}" for k, v in stats["per_class"].items()),
        ]

    def pair_report(self, pipeline, spec) -> dict:
        """Top-1 agreement and probability drift; top-1 / top-5 accuracy where the folders label the images."""
        fp32, int8, labels = _pairs(pipeline, spec)
        level = pipeline.thresholds["decision_level"]
        out = {"classification": agreement(fp32, int8, level)}
        if labels is not None:
            out["accuracy"] = accuracy(fp32, int8, labels, level)
        return out

    def report_lines(self, report: dict) -> list[str]:
        agree = report["classification"]
        lines = [
            f"top-1 agreement with FP32          {agree['top1_agreement']:.4f}  "
            f"({agree['top1_disagreements']} of {agree['images']} images change their top-1 class)",
            f"FP32 top-1 probability drift       {agree['prob_drift_mean']:.4f}",
        ]
        for name, acc in ((k, report["accuracy"][k]) for k in ("top1", "top5") if "accuracy" in report):
            lines.append(f"{name} accuracy FP32 / INT8          {acc['fp32']:.4f} / {acc['int8']:.4f}")
        return lines

    def loss_pt(self, pipeline, spec) -> float:
        """The top-1 drop where the folders label the images, else the top-1 agreement's shortfall from 1."""
        fp32, model, labels = _pairs(pipeline, spec)
        if labels is not None:
            return accuracy(fp32, model, labels)["top1"]["drop_pt"]
        return 100 * (1 - agreement(fp32, model)["top1_agreement"])

    def baseline_figures(self) -> list[tuple[str, tuple[str, ...], str, float]]:
        return [
            ("int8_top1_loss_pt", ("accuracy", "top1", "int8"), "baseline_map_drop_pt", 100.0),
            ("top1_agreement_loss", ("classification", "top1_agreement"), "baseline_agreement_drop", 1.0),
        ]

    def columns(self, pipeline, spec, measured: bool, reference: bool = False) -> dict:
        """Top-1 accuracy and its drop where the folders label the images; top-1 agreement with FP32 (INT8 rows)."""
        out = {"top-1": None, "top-1 drop": None, "top-1 agreement": None}
        if not measured or reference:
            return out
        fp32, model, labels = _pairs(pipeline, spec)
        if labels is not None:
            acc = accuracy(fp32, model, labels)["top1"]
            out.update({"top-1": round(acc["int8"], 4), "top-1 drop": round(acc["drop_pt"], 2)})
        if spec is not None:
            out["top-1 agreement"] = round(agreement(fp32, model)["top1_agreement"], 4)
        return out

    def pair_gates(
        self, fp32: list[Detections], int8: list[Detections], labels: np.ndarray | None, th: dict, case_id: str
    ) -> list:
        """Top-1 agreement with FP32 and the drift of FP32's top-1 probability on any images; with labels the
        top-1 and top-5 accuracy drops, each decided from its interval."""
        level = th["decision_level"]
        agree = agreement(fp32, int8, level)
        common = {"gate": "classification", "case_id": case_id, "level": level, "images": agree["images"]}
        results = [
            GateResult(
                metric="top1_agreement",
                value=agree["top1_agreement"],
                op=">=",
                threshold=th["min_top1_agreement"],
                interval=agree["ci"]["top1_agreement"],
                note=f"{agree['top1_disagreements']} of {agree['images']} images change their top-1 class",
                **common,
            ),
            GateResult(
                metric="top1_prob_drift_mean",
                value=agree["prob_drift_mean"],
                op="<=",
                threshold=th["max_prob_drift_mean"],
                interval=agree["ci"]["prob_drift_mean"],
                note="|FP32's top-1 probability - INT8's probability of that class|, mean over images",
                **common,
            ),
        ]
        if labels is None:
            return results
        scored = accuracy(fp32, int8, labels, level)
        return results + [
            GateResult(
                metric=f"{name}_drop_pt",
                value=scored[name]["drop_pt"],
                op="<=",
                threshold=th[f"max_{name}_drop_pt"],
                fp32=scored[name]["fp32"],
                int8=scored[name]["int8"],
                interval=scored[name]["ci"],
                note=f"{name} accuracy on {scored['images']} labelled images, FP32 - INT8 in points (paired)",
                **common,
            )
            for name in ("top1", "top5")
        ]


TASK = Classify()


def _pairs(pipe, spec) -> tuple[list[Detections], list[Detections], np.ndarray | None]:
    """FP32's and the config's rankings on the case's images, in order, and the images' class indices (None when
    unlabelled)."""
    ids = pipe.images.ids
    fp32, int8 = ([pipe.predictions(s).dets[i] for i in ids] for s in (None, spec))
    return fp32, int8, class_indices(pipe.labels, pipe.info.names) if pipe.labels else None


def _run(t: Target) -> list[GateResult]:
    if t.pipeline.task.name != TASK.name:
        return []
    return TASK.pair_gates(*_pairs(t.pipeline, t.spec), t.th, t.case_id)


GATES = (
    Gate(
        "classification",
        _run,
        needs=("val",),
        tags=("accuracy", "task"),
        thresholds=(
            Threshold(
                "max_top1_drop_pt",
                1.5,
                "classifiers: FP32 - INT8 top-1 accuracy on a folder-per-class set, points, decided from its paired "
                "interval (classification fixture static-qdq: 0.33 [0.00, 1.00] on 300 crops)",
            ),
            Threshold(
                "max_top5_drop_pt",
                1.0,
                "classifiers: FP32 - INT8 top-5 accuracy, points, paired interval (classification fixture: 0.00)",
            ),
            Threshold(
                "min_top1_agreement",
                0.95,
                "classifiers: share of images whose INT8 top-1 class is FP32's, on any images (classification "
                "fixture: 0.997 [0.990, 1.000]; an early Conv's weights x4: 0.793)",
            ),
            Threshold(
                "max_prob_drift_mean",
                0.05,
                "classifiers: mean |FP32's top-1 probability - INT8's for that class| (classification fixture: "
                "0.0033 [0.0023, 0.0046]; weights x4: 0.289)",
            ),
        ),
    ),
)
