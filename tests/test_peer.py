"""The OpenVINO + NNCF peer: its INT8 model keeps the head float and runs (without the extra, check's
note is tested in tests/test_cli.py)."""

import numpy as np
import pytest

from quantkit import peer
from quantkit.calibration import load_calibration
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
