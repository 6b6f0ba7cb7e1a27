"""Benchmark plumbing: machine info for every saved run, and the medians the ratio gate reads."""

import pytest

from quantkit import compat
from quantkit.cpu import cpu_info
from quantkit.session import available_eps


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record what decides INT8 speed: onnxruntime, its EPs, the CPU's INT8 flags."""
    info = cpu_info()
    machine_info["quantkit"] = {"onnxruntime": compat.ORT_VERSION, "onnx": compat.ONNX_VERSION,
                                "providers": compat.available_providers(), "eps": available_eps(),
                                "cpu_brand": info["brand"], "cpu_int8_flags": info["flags"]}


@pytest.fixture(scope="session")
def medians() -> dict:
    """(case, ep, threads) -> {precision: median ms}, filled by the benchmarks, read by the ratio gate."""
    return {}


def pytest_terminal_summary(terminalreporter, config):
    table = getattr(config, "_quantkit_ratio_table", None)
    if table:
        terminalreporter.write_sep("-", "INT8 / FP32 latency ratios (medians, this run)")
        terminalreporter.write_line(table)
