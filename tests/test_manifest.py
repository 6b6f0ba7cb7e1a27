"""A case's deployed operating point and NMS mode in the manifest: read, defaulted, refused when wrong."""

from pathlib import Path

import pytest

from quantkit.errors import ManifestError
from quantkit.manifest import THRESHOLDS, load_manifest

CASE = '[[case]]\nid = "c"\nmodel = "m.onnx"\n'


def manifest(tmp_path, extra=""):
    path = tmp_path / "quantkit.toml"
    path.write_text(CASE + extra)
    return load_manifest(path)


def test_operating_point_and_nms_defaults_and_overrides(tmp_path):
    case = manifest(tmp_path).cases[0]
    assert (case.conf, case.iou, case.nms) == (0.25, 0.7, "best_class")
    case = manifest(tmp_path, 'conf = 0.4\niou = 0.5\nnms = "multi-label"\n').cases[0]
    assert (case.conf, case.iou, case.nms) == (0.4, 0.5, "multi_label")


@pytest.mark.parametrize(
    "extra, message",
    [
        ("conf = 1.5\n", r"conf = 1.5 is not a number in \[0, 1\]"),
        ('iou = "high"\n', "iou = 'high'"),
        ('nms = "agnostic"\n', "'agnostic' is not one of best_class, multi_label"),
    ],
)
def test_bad_operating_point_is_a_manifest_error(tmp_path, extra, message):
    with pytest.raises(ManifestError, match=message):
        manifest(tmp_path, extra)


def test_accuracy_thresholds_are_in_the_table_and_upper_gating_takes_true(tmp_path):
    th = manifest(tmp_path, "[case.thresholds]\nmap_drop_gate_upper = true\nmax_class_ap_drop_pt = 3\n")
    merged = th.thresholds_for(th.cases[0])
    assert merged["map_drop_gate_upper"] == 1 and merged["max_class_ap_drop_pt"] == 3
    assert THRESHOLDS["map_drop_gate_upper"] == 0 and THRESHOLDS["max_map_drop_pt_small"] >= 100


def test_case_marks_are_read_and_refused_when_not_marker_names(tmp_path):
    assert manifest(tmp_path).cases[0].marks == ()
    assert manifest(tmp_path, 'marks = ["slow"]\n').cases[0].marks == ("slow",)
    with pytest.raises(ManifestError, match=r"marks = 'slow' is not a list of marker names"):
        manifest(tmp_path, 'marks = "slow"\n')


def test_a_case_marked_slow_leaves_the_default_selection(tmp_path, run_suite):
    """Every gate of a case with ``marks = ["slow"]`` carries the marker: ``-m "not slow"`` deselects them all."""
    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    model, calib = fixtures / "models/shapes-v8n-192x320.onnx", fixtures / "data/calib/images"
    text = "".join(f'[[case]]\nid = "{i}"\nmodel = "{model}"\ncalib = "{calib}"\n' for i in ("quick", "long"))
    (tmp_path / "m.toml").write_text(text + 'marks = ["slow"]\n')
    out = run_suite(tmp_path, "--quantkit-manifest", "m.toml", "--collect-only", "-m", "not slow").stdout
    assert "quick/" in out and "long/" not in out, out
    assert "deselected" in out, out


def test_a_case_for_a_newer_onnxruntime_skips_saying_why(tmp_path):
    """`onnxruntime = "X.Y"`: on an older onnxruntime the case's gates skip with the reason (an opset-22 model does
    not load before 1.21), instead of stopping the whole run; a bad version is a manifest error."""
    from quantkit import compat, plugin

    newer = manifest(tmp_path, 'onnxruntime = "99.0"\n').cases[0]
    assert (
        plugin.unsupported(newer)
        == f"case 'c' needs onnxruntime >= 99.0 (its model's opset); {compat.ORT_VERSION} is installed"
    )
    assert plugin.unsupported(manifest(tmp_path, 'onnxruntime = "1.15"\n').cases[0]) is None
    assert plugin.unsupported(manifest(tmp_path).cases[0]) is None
    with pytest.raises(ManifestError, match="onnxruntime = 'latest' is not a version"):
        manifest(tmp_path, 'onnxruntime = "latest"\n')
