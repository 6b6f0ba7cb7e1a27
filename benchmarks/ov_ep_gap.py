"""quantkit's INT8 file on onnxruntime's OpenVINO EP against the OpenVINO + NNCF peer, timed interleaved.

    PYTHONPATH=.:benchmarks python benchmarks/ov_ep_gap.py --ep-python /path/to/venv/bin/python [--rounds N]

``onnxruntime-openvino`` replaces the ``onnxruntime`` module, so it lives in its own virtual environment
(``python -m venv V && V/bin/pip install onnxruntime-openvino``); this script (run where quantkit, openvino
and nncf are) starts that interpreter as a worker and alternates blocks between the worker's sessions (the
OpenVINO EP, ``num_of_threads`` = threads, and for reference the worker's own CPU EP) and the peer
(``quantkit.peer``'s NNCF model on OpenVINO's runtime) in this process, in an order rotated each round,
as ``peer_gap.py`` does; "x peer" is the median over rounds of block / the peer's block of the same round.
mAP50-95 of the OpenVINO EP is quantkit's evaluation of the worker's outputs on the fixture's val set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
from pathlib import Path

import numpy as np

WORKER = r"""
import sys, time, statistics, numpy as np, onnxruntime as ort
model = sys.argv[1]
sessions = {}
def session(ep, threads):
    if (ep, threads) not in sessions:
        opts = ort.SessionOptions(); opts.log_severity_level = 3
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        if ep == "openvino":
            providers = [("OpenVINOExecutionProvider", {"device_type": "CPU", "num_of_threads": str(threads)})]
        else:
            providers = ["CPUExecutionProvider"]
        sessions[(ep, threads)] = ort.InferenceSession(model, opts, providers=providers)
    return sessions[(ep, threads)]
out, inp = sys.stdout.buffer, sys.stdin.buffer
out.write((ort.__version__ + "\n").encode()); out.flush()
while True:
    line = inp.readline().decode().split()
    if not line: break
    if line[0] == "block":
        ep, threads, runs, h, w = line[1], int(line[2]), int(line[3]), int(line[4]), int(line[5])
        s = session(ep, threads); name = s.get_inputs()[0].name
        x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
        for _ in range(5): s.run(None, {name: x})
        t = []
        for _ in range(runs):
            a = time.perf_counter(); s.run(None, {name: x}); t.append(time.perf_counter() - a)
        out.write(f"{1e3 * statistics.median(t)}\n".encode()); out.flush()
    elif line[0] == "run":
        ep, threads, h, w = line[1], int(line[2]), int(line[3]), int(line[4])
        x = np.frombuffer(inp.read(4 * 3 * h * w), np.float32).reshape(1, 3, h, w)
        s = session(ep, threads)
        outs = s.run(None, {s.get_inputs()[0].name: x})
        out.write((" ".join(str(len(o.shape)) + ":" + ",".join(map(str, o.shape)) for o in outs) + "\n").encode())
        for o in outs: out.write(np.ascontiguousarray(o, np.float32).tobytes())
        out.flush()
"""


class Worker:
    def __init__(self, python: str, model: Path):
        self.proc = subprocess.Popen([python, "-c", WORKER, str(model)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.version = self.proc.stdout.readline().decode().strip()

    def block(self, ep: str, threads: int, runs: int, hw: tuple[int, int]) -> float:
        self.proc.stdin.write(f"block {ep} {threads} {runs} {hw[0]} {hw[1]}\n".encode())
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def run_all(self, ep: str, threads: int, tensor: np.ndarray) -> list[np.ndarray]:
        h, w = tensor.shape[2:]
        self.proc.stdin.write(
            f"run {ep} {threads} {h} {w}\n".encode() + np.ascontiguousarray(tensor, np.float32).tobytes()
        )
        self.proc.stdin.flush()
        outs = []
        for spec in self.proc.stdout.readline().decode().split():
            shape = tuple(int(d) for d in spec.split(":")[1].split(","))
            outs.append(np.frombuffer(self.proc.stdout.read(4 * int(np.prod(shape))), np.float32).reshape(shape))
        return outs


class WorkerRunner:
    """quantkit's Runner interface over the worker's session (for evaluation)."""

    def __init__(self, worker: Worker, ep: str, threads: int, model_path: Path):
        import onnxruntime as ort

        self.worker, self.ep, self.threads, self.batch, self.model_path = worker, ep, threads, 1, model_path
        self.session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])  # metadata only

    def run(self, tensor):
        return self.run_all(tensor)[0]

    def run_all(self, tensor, first_only: bool = False):
        return self.worker.run_all(self.ep, self.threads, tensor)


def main() -> None:
    from peer_gap import DEFAULT, THREADS, map50_95, log
    from quantkit import compat
    from quantkit.manifest import load_manifest
    from quantkit import peer
    from quantkit.cpu import cpu_info
    from quantkit.pipeline import CasePipeline
    from quantkit.quantization.calibration import load_calibration
    from quantkit.report import markdown_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ep-python", required=True, help="a Python with onnxruntime-openvino installed")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    case = load_manifest(Path(__file__).resolve().parent.parent / "fixtures" / "manifest.toml").cases[0]
    pipe = CasePipeline(case, "cpu")
    hw, info = pipe.hw_nc[0], cpu_info()
    int8 = Path(pipe.quantized(DEFAULT).output)
    xml = peer.nncf_int8(case.model, load_calibration(case.calib, hw, progress=False), pipe.cache_dir)
    worker = Worker(args.ep_python, int8)
    print(
        f"CPU {info['brand']} ({os.cpu_count()} logical cores), INT8 flags {', '.join(info['flags']) or 'none'}; "
        f"peer: {peer.versions()} (this process, onnxruntime {compat.ORT_VERSION}); worker: onnxruntime-openvino "
        f"{worker.version}; load average {os.getloadavg()} at the start\n"
    )
    from quantkit.measure.session import Runner

    fp32 = map50_95(pipe, Runner(case.model, "cpu", 2))
    log("mAP of quantkit INT8 on the OpenVINO EP")
    maps = {
        "quantkit INT8 on onnxruntime-openvino's OpenVINO EP": map50_95(
            pipe, WorkerRunner(worker, "openvino", 2, int8)
        ),
        "quantkit INT8 on onnxruntime-openvino's CPU EP": None,
        peer.LABEL: map50_95(pipe, peer.OVRunner(xml, 2)),
    }
    names = list(maps)
    peer_runners = {t: peer.OVRunner(xml, t) for t in THREADS}
    tensor = np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32)
    blocks: dict = {}
    load = os.getloadavg()
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for t in THREADS:
            for name in order:
                if name == peer.LABEL:
                    ms = peer.block_ms(peer_runners[t], tensor, args.runs)
                else:
                    ms = worker.block("openvino" if "OpenVINO EP" in name else "cpu", t, args.runs, hw)
                blocks.setdefault((name, t), []).append(ms)
        log(f"round {r + 1}/{args.rounds}")
    rows = []
    for name in names:
        row = {"variant": name}
        for t in THREADS:
            row[f"ms @{t}t"] = round(statistics.median(blocks[(name, t)]), 3)
        for t in THREADS:
            row[f"x peer @{t}t"] = round(
                statistics.median([a / b for a, b in zip(blocks[(name, t)], blocks[(peer.LABEL, t)])]), 3
            )
        row["drop pt"] = round(100 * (fp32 - maps[name]), 2) if maps[name] is not None else "same file as above"
        rows.append(row)
    spread = {t: round(max(max(b) / min(b) for (_, tt), b in blocks.items() if tt == t), 2) for t in THREADS}
    print(
        f"{args.rounds} rounds, {args.runs} runs a block; FP32 mAP50-95 {fp32:.4f}; load average {load} before "
        f"timing, {os.getloadavg()} after; widest block spread {spread}\n"
    )
    print(markdown_table(rows))
    worker.proc.stdin.close()


if __name__ == "__main__":
    main()
