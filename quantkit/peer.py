"""The peers a YOLO user already has for CPU INT8.

Ultralytics' own ONNX INT8 export (``yolo export format=onnx int8=True``) is the ``ultralytics-ort``
preset of quantkit's quantizer: ``ultralytics_ort`` makes bench's row of it; check gates it as a config.

OpenVINO with NNCF post-training
quantization, made the way ``yolo export format=openvino int8=True`` makes it (``openvino.convert_model``,
then preset MIXED with the detect head's decode, DFL and Sigmoid left in float) — with the head found by
quantkit's own head finder instead of node-name patterns, and calibrated on the same letterboxed images.
It is the fastest NNCF configuration that passes quantkit's accuracy gates on the fixture
(``benchmarks/nncf_variants.py``; benchmarks/README.md, "Closing the gap to the peer", has the table).

Optional: ``pip install "quantkit-yolo[openvino]"`` brings openvino and nncf. Without them
``available()`` is False and reports carry a note instead of the peer's row.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx

from . import compat, heads
from .cache import default_cache_dir
from .errors import QuantkitError
from .model import name_nodes, quantized_nodes
from .quantization.calibration import CalibrationSet, choose_files, files_digest, load_calibration

LABEL = "OpenVINO NNCF INT8 (peer)"  # the peer's row in check's and bench's tables
INSTALL = "pip install 'quantkit-yolo[openvino]'"
EP = "openvino-native"  # OpenVINO's own runtime, not onnxruntime's OpenVINO EP


def available() -> bool:
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def versions() -> str:
    import nncf
    import openvino

    return f"openvino {openvino.__version__.split('-')[0]}, nncf {nncf.__version__}"


def nncf_int8(model_path: str | Path, calib: CalibrationSet, cache_dir: Path) -> Path:
    """The NNCF INT8 OpenVINO model (.xml) of ``model_path``, made once per model and calibration set.

    How it is made, and why (``benchmarks/nncf_variants.py`` measured each choice on the fixture, see
    benchmarks/README.md): the ONNX file goes through ``openvino.convert_model`` (what Ultralytics' OpenVINO
    export quantizes), not ``Core.read_model``: read as the file spells it, SiLU stays Sigmoid and Multiply and
    NNCF quantizes both of the Multiply's inputs (180 FakeQuantize on the fixture, 1.02 pt mAP drop); converted,
    SiLU is one Swish op and NNCF quantizes the Conv inputs only (66 FakeQuantize, 0.75 pt, 10-25 % faster).
    Preset MIXED on every calibration image: PERFORMANCE (symmetric activations) is no faster and loses 6.6 pt,
    half the images lose 0.08 pt more. The ignored scope is quantkit's head finder's nodes plus every Sigmoid;
    Ultralytics' name patterns (the head's Add/Sub/Mul/Div and DFL) and the head's computing nodes alone make
    the same 66-FakeQuantize model, so no node names are matched. OpenVINO's CPU default hint is already LATENCY.
    """
    import nncf
    import openvino as ov

    recipe = b"convert_model|MIXED|head+Sigmoid|all-images"  # in the key: peers made another way are not reused
    key = hashlib.sha256(Path(model_path).read_bytes() + calib.tensors.tobytes() + recipe).hexdigest()[:16]
    out = cache_dir / "peer" / f"{Path(model_path).stem}-nncf-{key}.xml"
    if out.is_file():
        return out
    proto = onnx.load(str(model_path))
    name_nodes(proto)
    head = heads.find(proto)
    if head is None:
        raise QuantkitError(
            f"{Path(model_path).name}: no supported YOLO head found, so the peer cannot keep it in float"
        )
    model = ov.convert_model(str(model_path))
    input_name = model.inputs[0].get_any_name()
    dataset = nncf.Dataset(list(calib.tensors), lambda t: {input_name: t[None]})
    level = logging.getLogger("nncf").level
    nncf.set_log_level(logging.WARNING)
    try:  # NNCF logs and draws its progress bar on stdout: keep them off ours (bench --json prints one object)
        with contextlib.redirect_stdout(sys.stderr):
            quantized = nncf.quantize(
                model,
                dataset,
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=len(calib.tensors),
                ignored_scope=nncf.IgnoredScope(names=head.nodes, types=["Sigmoid"], validate=False),
            )
    finally:
        nncf.set_log_level(level)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{time.time_ns()}.xml")
    ov.save_model(quantized, str(tmp))
    tmp.with_suffix(".bin").replace(out.with_suffix(".bin"))
    tmp.replace(out)
    return out


class OVRunner:
    """An OpenVINO compiled model with quantkit's Runner interface: ``run(tensor) -> first output``.

    ``threads`` sets ``INFERENCE_NUM_THREADS``; None keeps OpenVINO's own default (its deployment setting).
    """

    def __init__(self, model_path: str | Path, threads: int | None = None):
        import openvino as ov

        config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
        self.model_path, self.ep, self.threads, self.batch = Path(model_path), EP, threads, 1
        self.compiled = ov.Core().compile_model(str(model_path), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def run(self, tensor: np.ndarray) -> np.ndarray:
        return self.request.infer([tensor])[0]

    def run_all(self, tensor: np.ndarray, first_only: bool = False) -> list[np.ndarray]:
        result = self.request.infer([tensor])
        return [result[0]] if first_only else [result[i] for i in range(len(self.compiled.outputs))]

    @property
    def session(self) -> "_Metadata":
        """What evaluation reads of an onnxruntime session: the source ONNX file's metadata (OpenVINO keeps it
        under the model's ``framework`` rt_info), so the head family is picked as for onnxruntime's runners."""
        return _Metadata(self.model_path)


class _Metadata:
    def __init__(self, model_path: Path):
        import openvino as ov

        model, meta = ov.Core().read_model(str(model_path)), {}
        with contextlib.suppress(Exception):  # a model read from an .xml without the ONNX metadata: none
            meta = {k: v.astype(str) for k, v in model.get_rt_info(["framework"]).astype(dict).items()}
        self.custom_metadata_map = meta

    def get_modelmeta(self) -> "_Metadata":
        return self


def block_ms(runner, tensor: np.ndarray, rounds: int = 30, warmup: int = 5, bar=None) -> float:
    """Median milliseconds of ``rounds`` back-to-back runs: one runtime alone, its defaults as deployed. ``bar``
    (a ``quantkit.progress.Progress``) counts the runs."""
    for _ in range(warmup):
        runner.run(tensor)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        runner.run(tensor)
        times.append(time.perf_counter() - start)
        if bar is not None:
            bar.update()
    return 1e3 * statistics.median(times)


def missing_note(calib: bool) -> str | None:
    """Why a report has no peer row and how to add it, in one line; None when nothing is missing."""
    steps = ([] if available() else [f"{INSTALL} (openvino and nncf are not installed)"]) + (
        [] if calib else ["pass --calib DIR (NNCF calibrates on those images)"]
    )
    return f"peer: no '{LABEL}' row: {' and '.join(steps)} to add it for the first model" if steps else None


def for_bench(model: str | Path, hw: tuple[int, int], calib_dir: str | Path | None) -> tuple[Path | None, str]:
    """``quantkit bench``'s peer: the NNCF INT8 model of ``model`` (the first MODEL, made once and cached
    like check's) and a note on it, or None and the one-line reason there is no row.

    A ``calib_dir`` without images is the caller's error (CalibrationError, with or without the extra); a model
    NNCF cannot serve is a note."""
    if calib_dir is not None:
        choose_files(calib_dir)
    note = missing_note(calib_dir is not None)
    if note:
        return None, note
    name = Path(model).name
    proto = onnx.load(str(model), load_external_data=False)
    if quantized_nodes(proto):
        return None, f"peer: no '{LABEL}' row: the first MODEL ({name}) is already quantized: put its FP32 source first"
    calib = load_calibration(calib_dir, hw, progress=False)
    try:
        xml = nncf_int8(model, calib, default_cache_dir())
    except QuantkitError as exc:
        return None, f"peer: no '{LABEL}' row: {exc}"
    except Exception as exc:  # noqa: BLE001 - NNCF or OpenVINO refusing the model: the other rows still stand
        return (
            None,
            f"peer: no '{LABEL}' row: NNCF could not quantize {name} ({type(exc).__name__}: {compat.error_line(exc)})",
        )
    return xml, (
        f"peer: {versions()} — {name} quantized like `yolo export format=openvino int8=True` (convert_model, "
        "preset MIXED, head "
        f"in float, {len(calib.tensors)} --calib images); threads = INFERENCE_NUM_THREADS, each stream its own "
        "compiled model in its own thread, OpenVINO's other settings its defaults"
    )


def throughput_rows(
    xml: str | Path, hw: tuple[int, int], threads: list[int], streams: list[int], seconds: float = 2.0
) -> list[dict]:
    """The peer over the threads x streams grid, measured as ``throughput.measure`` measures onnxruntime
    sessions: each stream its own compiled model (``INFERENCE_NUM_THREADS`` = threads, OpenVINO's other
    settings its defaults) in its own thread (OpenVINO releases the GIL during inference)."""
    from .measure.throughput import measure

    OVRunner(xml, threads[0])  # compiles before any timing
    return [
        {**measure(xml, hw, EP, t, s, seconds, runner=lambda t=t: OVRunner(xml, t)), "model": LABEL}
        for t in threads
        for s in streams
    ]


ULTRALYTICS_PRESET = "ultralytics-ort"


def ultralytics_ort(model: str | Path, calib_dir: str | Path, cache_dir: Path | None = None) -> tuple[Path | None, str]:
    """``quantkit bench``'s Ultralytics-ORT row: ``model`` quantized with the ``ultralytics-ort`` preset on
    ``calib_dir`` (made once per model and calibration files), and a note; None and the reason when it cannot
    be made."""
    from .quantization.quantizer import quantize

    name = Path(model).name
    if quantized_nodes(onnx.load(str(model), load_external_data=False)):
        return None, f"no Ultralytics-ORT row: the first MODEL ({name}) is already quantized: put its FP32 source first"
    key = hashlib.sha256(Path(model).read_bytes() + files_digest(calib_dir).encode()).hexdigest()[:16]
    out = Path(cache_dir or default_cache_dir()) / "peer" / f"{Path(model).stem}-{ULTRALYTICS_PRESET}-{key}.onnx"
    note = (
        f"{out.name}: {name} quantized with the '{ULTRALYTICS_PRESET}' preset, what `yolo export format=onnx "
        "int8=True` makes (ultralytics 8.4.x: quantize_static defaults, only Conv/Gemm/MatMul quantized)"
    )
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            quantize(model, out, preset=ULTRALYTICS_PRESET, calib=calib_dir, progress=False)
        except QuantkitError as exc:
            return None, f"no Ultralytics-ORT row: {exc}"
    return out, note
