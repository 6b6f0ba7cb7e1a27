"""Input gates: evidence lost on the way in fails the run instead of shrinking it silently.

Unreadable calibration images (a run could calibrate on 1 image of 100), unreadable evaluation
images, and evaluation images decoded at another size than the annotations state (EXIF rotation,
a resized copy) are each held to ``max_skipped_fraction``.
"""

import pytest

from quantkit import gates


def test_calibration_images_readable(qk_pair):
    q = qk_pair.pipeline.quantized(qk_pair.spec)
    if q.calibration is None:
        pytest.skip(f"{q.config['mode']} quantization reads no calibration images")
    qk_pair.assert_passed(qk_pair.gate_results("calibration inputs"))


@pytest.mark.quantkit_needs("val")
def test_evaluation_images_readable(qk_case):
    gates.assert_passed(qk_case.gate_results("evaluation inputs"))
