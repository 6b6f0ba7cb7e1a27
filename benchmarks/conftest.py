"""Benchmark plumbing: machine info for every saved run, and the INT8/FP32 ratio gate.

The gate runs after the last benchmark (``pytest_sessionfinish``), so it also runs under
``--benchmark-only``: it prints the ratio table and fails the run when a ratio is over
``max_latency_ratio_<ep>`` of the threshold table.
"""

import pytest

from quantkit import compat, gates
from quantkit.cpu import cpu_info
from quantkit.plugin import settings
from quantkit.report import markdown_table
from quantkit.session import available_eps


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record what decides INT8 speed: onnxruntime, its EPs, the CPU's INT8 flags."""
    info = cpu_info()
    machine_info["quantkit"] = {"onnxruntime": compat.ORT_VERSION, "onnx": compat.ONNX_VERSION,
                                "providers": compat.available_providers(), "eps": available_eps(),
                                "cpu_brand": info["brand"], "cpu_int8_flags": info["flags"]}


def pytest_configure(config):
    config._quantkit_medians = {}  # (case, ep, threads) -> {precision: median ms}, filled by test_latency


def ratio_gate(config) -> tuple[list[dict], list[gates.GateResult]]:
    """INT8 median / FP32 median for every (case, EP, threads) measured in this run."""
    s = settings(config)
    specs = {(c.id, k.id): (c, k) for c, k in s.manifest.pairs()}
    rows, results = [], []
    for (case_id, ep, threads), by_precision in sorted(config._quantkit_medians.items()):
        fp32 = by_precision.get("fp32")
        for precision, ms in by_precision.items():
            if precision == "fp32" or fp32 is None:
                continue
            case, spec = specs[(case_id, precision)]
            result = gates.check_latency(ms / fp32, ep, s.manifest.thresholds_for(case, spec),
                                         f"{case_id}/{precision}/{ep}/{threads}t", fp32, ms)
            results.append(result)
            rows.append({"case": case_id, "config": precision, "ep": ep, "threads": threads, "fp32 ms": round(fp32, 2),
                         "int8 ms": round(ms, 2), "ratio": round(ms / fp32, 3), "max": result.threshold,
                         "gate": "pass" if result.passed else "FAIL"})
    return rows, results


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not getattr(config, "_quantkit_medians", None):
        return
    rows, results = ratio_gate(config)
    config._quantkit_ratio_report = (markdown_table(rows), gates.failures(results))
    if gates.failures(results) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    report = getattr(config, "_quantkit_ratio_report", None)
    if report:
        table, failed = report
        terminalreporter.write_sep("-", "INT8 / FP32 latency ratios (medians, this run)")
        terminalreporter.write_line(table)
        for line in failed:
            terminalreporter.write_line(line, red=True)
