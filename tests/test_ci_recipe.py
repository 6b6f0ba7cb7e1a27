"""The README's CI recipe run as written on the embedded fixture: the baseline commands of README.md, then
the gate step of docs/ci/quantkit.yml, in a fresh repository laid out at the workflow's paths."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "docs" / "ci" / "quantkit.yml"


def _readme_block(fence: str) -> str:
    section = (ROOT / "README.md").read_text().split("## The CI recipe", 1)[1]
    return section.split(f"```{fence}\n", 1)[1].split("```", 1)[0]


def test_readme_workflow_is_the_example_file():
    """The workflow the README shows is docs/ci/quantkit.yml, its header comment aside."""
    example = "".join(line for line in WORKFLOW.read_text().splitlines(keepends=True) if not line.startswith("#"))
    assert _readme_block("yaml") == example


@pytest.mark.slow
def test_ci_recipe_runs_as_written(fixture_case, tmp_path):
    text = WORKFLOW.read_text()
    env = dict(re.findall(r"^ +(QUANTKIT_\w+): (\S+)", text, re.M))
    gate = [line.split("run: ", 1)[1] for line in text.splitlines() if "run: pytest " in line]
    assert set(env) == {"QUANTKIT_MODEL", "QUANTKIT_CALIB"} and len(gate) == 1
    repo = tmp_path / "repo"  # the team's repository: its model and photos at the workflow's paths
    (repo / env["QUANTKIT_MODEL"]).parent.mkdir(parents=True)
    shutil.copy(fixture_case.model, repo / env["QUANTKIT_MODEL"])
    photos = repo / env["QUANTKIT_CALIB"]  # a team's folder of 300 unlabelled photos: 200 held out, 100 calibrate
    photos.mkdir(parents=True)
    for folder in (fixture_case.calib, fixture_case.coco_images):
        for image in sorted(folder.iterdir()):
            (photos / f"{folder.parent.name}-{image.name}").symlink_to(image)
    environ = {
        **os.environ,
        **env,
        "QUANTKIT_CACHE": str(tmp_path / "cache"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
    }
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    for command in [*_readme_block("bash").strip().splitlines(), *gate]:  # save + commit the baseline, then gate
        proc = subprocess.run(["bash", "-c", command], cwd=repo, env=environ, capture_output=True, text=True)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
    committed = subprocess.run(
        ["git", "ls-files", ".benchmarks"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    assert committed, "the baseline was not committed"
