"""Results files and baselines: selected by --quantkit-results / -save-baseline / -compare.

Accuracy and size are compared against a baseline anywhere; the INT8/FP32 latency ratio only where
the baseline was timed on the same CPU class (vendor, INT8 instructions, threads: ``cpu.cpu_class``),
so a baseline committed from one CI runner gates the next one of its kind. The ratio is timed in serial
runs only (under pytest-xdist another worker shares the CPU): run the baseline comparison without -n.
"""

import pytest

from quantkit import gates
from quantkit.measure.bench import latency_ratio
from quantkit.cpu import fingerprint
from quantkit.plugin import load_baseline, results_dir, state, write_json

pytestmark = [pytest.mark.quantkit_record, pytest.mark.quantkit_needs("val")]
BASELINE_THREADS = 1


def _record(qk_pair, request) -> dict:
    """The pair's record, timed (serial runs only: a second xdist worker would share the CPU)."""
    p = qk_pair.pipeline
    record = p.record(qk_pair.spec)
    serial = not hasattr(request.config, "workerinput")
    record["latency"] = (
        latency_ratio(
            p.fp32_reference(qk_pair.spec),
            p.model_path(qk_pair.spec),
            p.hw_nc[0],
            p.ep,
            threads=BASELINE_THREADS,
            rounds=int(qk_pair.thresholds["latency_rounds"]),
        )
        if serial
        else None
    )
    record["machine"] = fingerprint(BASELINE_THREADS)
    return record


def _baseline(request, qk_settings, qk_pair) -> dict:
    """The pair's record in baseline ``--quantkit-compare NAME`` (``plugin.load_baseline``); a missing one fails."""
    records, where = load_baseline(request.config, qk_settings.compare)
    p = qk_pair.pipeline
    record = records.get((p.case.id, qk_pair.spec.id, p.ep))
    if record is None:
        pytest.fail(
            f"baseline '{qk_settings.compare}' has no record of {qk_pair.id} ({where}): run "
            f"--quantkit-save-baseline {qk_settings.compare} first (a passing run, latency gates included)"
        )
    return record


@pytest.fixture
def qk_record(qk_pair, qk_settings, request):
    """This run's record of the pair (made once per pair), written to the results folder (the baseline is the
    latency gates' pytest-benchmark record: ``plugin._save_baseline``)."""
    records = state(request.config).records
    if qk_pair.id in records:
        return records[qk_pair.id]
    record = _record(qk_pair, request)
    name = f"{qk_pair.pipeline.case.id}--{qk_pair.spec.id}--{qk_pair.pipeline.ep}.json"
    if qk_settings.results:
        write_json(results_dir(qk_settings) / name, record)
    records[qk_pair.id] = name, record
    return name, record


def test_record_and_compare(qk_pair, qk_settings, qk_record, request):
    _, record = qk_record
    if qk_settings.compare:
        baseline = _baseline(request, qk_settings, qk_pair)
        qk_pair.assert_passed(qk_pair.gate_results("baseline", baseline=(record, baseline)))


def test_latency_against_baseline(qk_pair, qk_settings, qk_record, request):
    if not qk_settings.compare:
        pytest.skip("no --quantkit-compare baseline named")
    _, record = qk_record
    baseline = _baseline(request, qk_settings, qk_pair)
    if record["latency"] is None:
        pytest.skip("latency is timed in serial runs only (under xdist another worker shares the CPU)")
    then, now = (baseline.get("machine") or {}).get("class"), record["machine"]["class"]
    if not baseline.get("latency") or then != now:
        pytest.skip(
            f"baseline '{qk_settings.compare}' was timed on CPU class {then!r}, this run on {now!r}: "
            "latency ratios compare only within one CPU class (save a baseline on this class)"
        )
    p, th = qk_pair.pipeline, qk_pair.thresholds
    first = record["latency"]

    def measure(rounds):  # the first measurement is the record's own
        if rounds == th["latency_rounds"]:
            return first
        return latency_ratio(
            p.fp32_reference(qk_pair.spec),
            p.model_path(qk_pair.spec),
            p.hw_nc[0],
            p.ep,
            threads=BASELINE_THREADS,
            rounds=rounds,
        )

    def check(measured: dict) -> gates.GateResult:
        (result,) = qk_pair.gate_results("baseline latency", baseline=(record, baseline), timing=measured)
        return result

    result, _ = gates.latency_with_retry(measure, check, th)
    qk_pair.assert_passed([result])
