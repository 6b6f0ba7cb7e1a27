"""The execution-provider registry: one module per EP, everything else derived from it."""

import dataclasses

import pytest

from quantkit import gates, providers
from quantkit.cli import build_parser
from quantkit.errors import QuantkitError
from quantkit.manifest import THRESHOLDS
from quantkit.measure import session
from quantkit.providers.base import ExecutionProvider


def test_every_eps_latency_thresholds_are_in_the_threshold_table_with_their_defaults():
    for provider in providers.REGISTRY:
        for key, default in provider.thresholds.items():
            assert THRESHOLDS[key] == default, key
        for vnni in (True, False):
            assert provider.threshold_key(vnni) in provider.thresholds


def test_the_cpu_threshold_follows_the_cpu_class(monkeypatch):
    monkeypatch.setattr(gates.latency, "has_vnni", lambda: True)
    assert gates.latency_threshold_key("cpu") == "max_latency_ratio_cpu_vnni"
    monkeypatch.setattr(gates.latency, "has_vnni", lambda: False)
    assert gates.latency_threshold_key("cpu") == "max_latency_ratio_cpu"
    assert gates.latency_threshold_key("cuda", size_only=True) == "max_latency_ratio_size_only"


def test_help_names_every_registered_ep():
    usage = build_parser().format_help()
    for name, sub in build_parser()._subparsers._group_actions[0].choices.items():
        if any("--ep" in a.option_strings for a in sub._actions):
            text = sub.format_help().replace("\n", " ")
            assert all(ep in text for ep in providers.IDS), (name, text)
    assert usage


def test_an_unknown_ep_names_the_known_ones_and_a_missing_one_how_to_get_it(tiny_model):
    with pytest.raises(QuantkitError, match="unknown execution provider 'npu': choose one of cpu, cuda"):
        session.Runner(tiny_model, "npu")
    missing = next(p for p in providers.REGISTRY if p.id not in session.available_eps())
    with pytest.raises(QuantkitError, match=f"'{missing.id}' is not available.*{missing.install[:20]}"):
        session.Runner(tiny_model, missing.id)


def test_a_new_ep_is_one_registry_entry(monkeypatch, tiny_model):
    """An EP added to the registry (here one that names the CPU's onnxruntime provider) is offered, starts
    sessions, gets its own latency threshold key and default, and its cache folder is a known cache kind."""
    npu = ExecutionProvider(
        id="npu", ort_name="CPUExecutionProvider", thresholds={"max_latency_ratio_npu": 0.8}, install="pip install npu"
    )
    monkeypatch.setattr(providers, "REGISTRY", (*providers.REGISTRY, npu))
    monkeypatch.setattr(providers, "IDS", (*providers.IDS, "npu"))
    assert "npu" in session.available_eps() and "npu" in providers.listing()
    assert providers.latency_thresholds()["max_latency_ratio_npu"] == 0.8
    assert gates.latency_threshold_key("npu") == "max_latency_ratio_npu"
    runner = session.Runner(tiny_model, "npu")
    assert runner.session.get_providers()[0] == "CPUExecutionProvider"
    with_cache = dataclasses.replace(npu, cache_kind="npu-blobs")
    monkeypatch.setattr(providers, "REGISTRY", (*providers.REGISTRY[:-1], with_cache))
    assert "npu-blobs" in providers.cache_kinds()
