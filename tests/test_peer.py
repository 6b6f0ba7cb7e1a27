"""The OpenVINO + NNCF peer: its INT8 model keeps the head float and runs; without the extra, a note."""

import numpy as np
import pytest

from quantkit import check, peer
from quantkit.calibration import load_calibration
from quantkit.manifest import single_case
from quantkit.session import Runner

needs_openvino = pytest.mark.skipif(not peer.available(), reason="openvino and nncf not installed (the `openvino` extra)")


@needs_openvino
def test_nncf_int8_runs_like_the_onnx_model(tiny_model, calib_dir, tmp_path):
    calib = load_calibration(calib_dir, (32, 32), progress=False)
    xml = peer.nncf_int8(tiny_model, calib, tmp_path)
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert peer.nncf_int8(tiny_model, calib, tmp_path) == xml  # made once per model and data
    x = calib.tensors[:1]
    ov, fp32 = peer.OVRunner(xml, threads=1).run(x), Runner(tiny_model).run(x)
    assert ov.shape == fp32.shape
    scores = ov[0, 4:]  # the head stayed float: class scores are sigmoid outputs, not steps of a box scale
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0
    assert np.abs(ov - fp32).max() < 0.1 * np.abs(fp32).max()
    assert peer.block_ms(peer.OVRunner(xml, threads=1), x, rounds=3, warmup=1) > 0


def test_check_without_the_extra_says_how_to_get_the_peer(monkeypatch, tiny_model, calib_dir, tmp_path):
    monkeypatch.setattr(peer, "available", lambda: False)
    report = check.run_check(single_case(tiny_model, calib_dir), eps=["cpu"], cache_dir=tmp_path, progress=False, rounds=3)
    assert not any(r["verdict"] == "peer" for r in report.rows)
    assert any("pip install 'quantkit-yolo[openvino]'" in note for note in report.notes)
