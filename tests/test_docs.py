"""README.md is the page a user reads first: its opening commands are CI's, its links resolve, it stays short."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_main_job_and_ci_s_test_command():
    first = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    commands = [line.split("#", 1)[0].strip() for line in first]
    assert commands == ['pip install -e ".[test]" && quantkit check', 'pip install -e ".[test]" && pytest']
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci, ".ci/run must run exactly the README's test command"
    assert README.index("```bash") < README.index("\n## ")


def test_readme_states_the_measured_test_time_not_a_guess():
    """The default run, cold cache, 2026-12-08: 170.81 s printed by `QUANTKIT_CACHE=$(mktemp -d) pytest` in a clean
    clone's CI venv with the machine to itself (298 s in `bash .ci/run` beside a training job)."""
    assert "206 s cold on a 2-core AMD EPYC (VNNI), CI" in README and "about 3 minutes" not in README


def test_readme_is_short_and_every_link_resolves():
    assert len(README.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert links and [link for link in links if not (ROOT / link).exists()] == []
    for page in (ROOT / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / link).exists(), f"{page.name}: {link}"


def test_readme_three_commands_name_what_exists():
    """The user path's commands use options the parser knows."""
    from quantkit.cli import build_parser

    parser = build_parser()
    blocks = [block.split("```", 1)[0] for block in README.split("```bash\n")[1:]]
    lines = [line.split("#", 1)[0].split() for block in blocks for line in block.splitlines()]
    commands = [words[1:] for words in lines if words[:1] == ["quantkit"]]
    assert len(commands) >= 4
    for args in commands:
        parser.parse_args(args)


def test_readme_fixture_table_is_the_committed_check_report():
    """Each figure of README's fixture table is the value of docs/check-fixture/report.json, the report of the
    `quantkit check` run it quotes, so no figure there is typed by hand."""
    import json

    report = json.loads((ROOT / "docs" / "check-fixture" / "report.json").read_text())
    rows = {r["model"]: r for r in report["rows"]}
    labels = {
        "FP32": "FP32 @ cpu",
        "INT8, onnxruntime's defaults (the seed's configuration)": "INT8 naive @ cpu",
        "INT8, Ultralytics' `yolo export format=onnx int8=True` recipe": "INT8 ultralytics-ort @ cpu",
        "INT8, quantkit `static-qdq`": "INT8 static-qdq @ cpu",
    }
    table = README.split("| model (fixture, 192x320) |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert len(table) == len(labels)
    for line in table:
        label, size, latency, map_, agree, verdict = [cell.strip() for cell in line.strip("|").split("|")]
        row = rows[labels[label]]
        assert (float(size), float(latency), float(map_), verdict) == (
            row["size MB"],
            row["latency ms"],
            row["mAP50-95"],
            row["verdict"],
        )
        assert (float(agree) if agree else None) == row["agreement mAP"]
    assert report["machine"]["onnxruntime"] in README and report["machine"]["cpu"]["brand"] in README


def test_history_page_is_quantkit_history_of_the_committed_results():
    """docs/history/history.md is what `quantkit history results --out docs/history` writes for the committed
    results/ (rerun with `pytest quantkit/suite --quantkit-results results` or `tox`), so no figure is typed."""
    from quantkit.report import history, markdown_table

    rows, flags = history(ROOT / "results")
    page = (ROOT / "docs" / "history" / "history.md").read_text()
    assert markdown_table(rows) in page
    assert all(f"- {flag}" in page for flag in flags)
    assert all(row["CPU class"] != "not recorded" for row in rows), "every results row names its CPU class"
