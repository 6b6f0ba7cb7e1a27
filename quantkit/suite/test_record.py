"""Results files and accuracy baselines: selected by --quantkit-results / -save-baseline / -compare."""

import json

import pytest

from quantkit import gates
from quantkit.bench import latency_ratio
from quantkit.plugin import baseline_dir, results_dir, write_json


@pytest.mark.quantkit_record
def test_record_and_compare(qk_pair, qk_settings, request):
    p, spec = qk_pair.pipeline, qk_pair.spec
    record = p.record(spec)
    name = f"{p.case.id}--{spec.id}--{p.ep}.json"
    if qk_settings.results:
        # a second xdist worker would share the CPU and skew the ratio: time only in a serial run
        serial = not hasattr(request.config, "workerinput")
        record["latency"] = latency_ratio(p.case.model, p.model_path(spec), p.hw_nc[0], p.ep, threads=1) if serial else None
        write_json(results_dir(qk_settings) / name, record)
    if qk_settings.save_baseline:
        write_json(baseline_dir(qk_settings, qk_settings.save_baseline) / name, record)
    if qk_settings.compare:
        path = baseline_dir(qk_settings, qk_settings.compare) / name
        if not path.is_file():
            pytest.fail(f"no baseline '{qk_settings.compare}' for {qk_pair.id} ({path}): run --quantkit-save-baseline {qk_settings.compare} first")
        gates.assert_passed(gates.check_baseline(record, json.loads(path.read_text()), qk_pair.thresholds, qk_pair.id))
