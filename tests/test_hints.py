"""Every flag a message names is an option that exists: in the source's strings, for some command (or the pytest
plugin), and in what each command prints, for that command itself."""

import argparse
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from quantkit import options
from quantkit.cli import build_parser

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]")
PACKAGE = Path(__file__).resolve().parents[1] / "quantkit"
# named in a docstring, not a message: pytest's own option; benchmarks/tasks.py's option
ELSEWHERE = {"--pyargs", "--protos"}


def command_flags() -> dict[str, set[str]]:
    """Command name -> its options, a nested command's ("cache prune") with its parent's name."""

    def walk(parser, name, out):
        out[name] = {o for a in parser._actions for o in a.option_strings}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}".strip(), out)
        return out

    return walk(build_parser(), "", {})


def pytest_benchmark_flags() -> set[str]:
    """pytest-benchmark's own options, as `pytest --help` lists them (the plugin and the suite name them)."""
    text = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"--benchmark-[a-z-]+[a-z]", text))


def test_every_flag_in_the_package_strings_is_an_option():
    commands = command_flags()
    known = set().union(*commands.values()) | {options.pytest_flag(o.name) for o in options.plugin_options()}
    known |= pytest_benchmark_flags()
    unknown = {}
    for path in PACKAGE.rglob("*.py"):
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
            if tok.type == tokenize.STRING:
                for flag in FLAG.findall(tok.string):
                    if flag not in known | ELSEWHERE and flag != "--quantkit":  # the plugin's prefix, composed
                        unknown.setdefault(flag, f"{path.relative_to(PACKAGE.parent)}:{tok.start[0]}")
    assert not unknown, f"flags named in messages that no command has: {unknown}"


@pytest.mark.parametrize("command", ["check", "compare"])
def test_what_a_command_prints_names_only_its_own_options(command, tiny_model, calib_dir, tmp_path, run_cli):
    """Too few images (6 in --calib, 1 held out; 6 for compare): each command's advice names its own options."""
    if command == "check":
        args = ("check", tiny_model, "--calib", calib_dir, "--out", tmp_path / "report")
    else:
        int8 = tmp_path / "int8.onnx"
        assert run_cli("quantize", tiny_model, "--calib", calib_dir, "-o", int8)[0] == 0
        args = ("compare", tiny_model, int8, "--images", calib_dir)
    code, out, err = run_cli(*args)
    assert code == 3, out + err
    named = set(FLAG.findall(out + err))
    assert named, out + err  # the advice names options ...
    assert named <= command_flags()[command], named - command_flags()[command]  # ... of this command
