"""An onnxruntime InferenceSession per execution provider, with fixed threads and IOBinding on GPUs."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from .. import cache, compat, providers
from ..cache import default_cache_dir
from ..errors import EPUnavailableError, QuantkitError
from ..model import SESSION_CONFIG_KEY


def available_eps() -> list[str]:
    """Short ids of the registered EPs this onnxruntime build offers, in registry order."""
    have = set(compat.available_providers())
    return [p.id for p in providers.REGISTRY if p.ort_name in have]


def _provider(ep: str, model_path: Path):
    """onnxruntime's providers entry for ``ep``: its name, with its options where it has any."""
    provider = providers.get(ep)
    if ep not in available_eps():
        raise QuantkitError(
            f"execution provider '{ep}' is not available in this onnxruntime "
            f"(available: {', '.join(available_eps())}): {provider.install}, or pick --ep cpu"
        )
    # its folder in the cache (a temporary stand-in where the cache cannot take files)
    folder = cache.kind_folder(default_cache_dir(), provider.cache_kind) if provider.cache_kind else None
    options = provider.options(model_path, folder)
    return provider.ort_name if options is None else (provider.ort_name, options)


@contextlib.contextmanager
def _captured_native_output():
    """onnxruntime's C++ side prints EP start-up errors to the process's stdout/stderr: while a
    non-CPU session is created, route both file descriptors into a buffer we can quote from."""
    buffer = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = [os.dup(1), os.dup(2)]
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield buffer
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            buffer.write(sink.read().decode("utf-8", "replace"))
            buffer.write("".join(f"\n{w.message}" for w in caught))


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if any(w in line.lower() for w in ("error", "fail", "not in available"))] or lines
    return errors[-1][:240] if errors else ""


def model_session_config(path: Path) -> dict[str, str]:
    """Session options a model says it needs (``quantkit_session_config`` metadata: weight-only INT8)."""
    try:
        props = onnx.load(str(path), load_external_data=False).metadata_props
    except Exception:  # noqa: BLE001 - unreadable here means onnxruntime will say why in a moment
        return {}
    raw = next((p.value for p in props if p.key == SESSION_CONFIG_KEY), None)
    return json.loads(raw) if raw else {}


class Runner:
    """One model on one EP: ``run(tensor) -> first output``, ``run_all`` -> every output (IOBinding on CUDA and
    TensorRT).

    ``batch`` is the model's fixed batch size (1 when dynamic); ``run`` fills a smaller batch up
    with copies of its last image and returns only the rows that were asked for."""

    def __init__(
        self,
        model_path: str | Path,
        ep: str = "cpu",
        threads: int | None = None,
        spin: bool = True,
        model_config: bool = True,
    ):
        """``spin=False`` stops idle intra-op threads from spinning: needed when several sessions take
        turns in one process (interleaved timing), where spinning pools steal each other's cores.
        ``model_config=False`` ignores the session options stamped in the model (plain onnxruntime)."""
        self.model_path, self.ep, self.threads = Path(model_path), ep, threads
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        for key, value in (model_session_config(self.model_path) if model_config else {}).items():
            opts.add_session_config_entry(key, value)
        chosen, cpu = _provider(ep, self.model_path), providers.get("cpu").ort_name
        try:
            with _captured_native_output() if ep != "cpu" else contextlib.nullcontext(io.StringIO()) as log:
                self.session = ort.InferenceSession(
                    str(self.model_path), opts, providers=[chosen] if ep == "cpu" else [chosen, cpu]
                )
        except Exception as exc:  # noqa: BLE001
            raise QuantkitError(
                f"onnxruntime {compat.ORT_VERSION} cannot load {self.model_path.name} on '{ep}' "
                f"({compat.error_line(exc)})"
            ) from None
        running = self.session.get_providers()
        if not running or running[0] != providers.get(ep).ort_name:
            reason = _last_error(log.getvalue()) or "no reason given"
            raise EPUnavailableError(
                f"execution provider '{ep}' did not start for {self.model_path.name}: onnxruntime "
                f"{compat.ORT_VERSION} fell back to {', '.join(running) or 'nothing'} ({reason}); "
                "install that EP's libraries or pick another --ep"
            )
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        batch = self.session.get_inputs()[0].shape[0]
        self.batch = batch if isinstance(batch, int) and batch > 1 else 1
        self._binding = self.session.io_binding() if providers.get(ep).cuda_binding else None

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """The first output for ``tensor`` [B, 3, H, W] (what latency timing and raw-output statistics read)."""
        return self.run_all(tensor, first_only=True)[0]

    def run_all(self, tensor: np.ndarray, first_only: bool = False) -> list[np.ndarray]:
        """Every output for ``tensor`` [B, 3, H, W], B rows each (segmentation heads have two)."""
        rows = len(tensor)
        if rows < self.batch:
            tensor = np.concatenate([tensor, np.repeat(tensor[-1:], self.batch - rows, axis=0)])
        names = self.output_names[:1] if first_only else self.output_names
        if self._binding is None:
            outs = self.session.run(names, {self.input_name: tensor})
        else:
            self._binding.bind_cpu_input(self.input_name, tensor)
            for name in names:
                self._binding.bind_output(name, "cuda")
            self.session.run_with_iobinding(self._binding)
            outs = self._binding.copy_outputs_to_cpu()
        return [o[:rows] for o in outs]
