"""quantkit/options.py is the one declared table of options: the CLI's parsers and the pytest plugin take theirs
from it, and both build a Case from its case rows."""

import argparse
import dataclasses
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

from quantkit import cli, options, plugin
from quantkit.manifest import Case, single_case
from quantkit.options import Arg, Option


def _commands(parser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _action(parser, option: Option) -> argparse.Action:
    return next(a for a in parser._actions if option.cli.flag in (a.option_strings or [a.dest]))


class _RecordingParser:
    """What pytest_addoption declares: option flag -> addoption's keywords, ini names."""

    def __init__(self):
        self.options, self.ini = {}, set()

    def getgroup(self, *args):
        return SimpleNamespace(addoption=lambda flag, **kwargs: self.options.setdefault(flag, kwargs))

    def addini(self, name, help, default=None):
        self.ini.add(name)


def _pytest_options() -> _RecordingParser:
    parser = _RecordingParser()
    plugin.pytest_addoption(parser)
    return parser


def test_every_cli_row_is_an_argument_of_each_of_its_commands():
    commands = _commands(cli.build_parser())
    rows = [o for o in options.OPTIONS if o.cli]
    assert rows and {c for o in rows for c in o.cli.commands} <= set(commands)
    for option in rows:
        for command in option.cli.commands:
            action = _action(commands[command], option)
            assert (action.dest, action.help, action.default) == (option.name, option.cli.help, option.cli.default)


def test_every_plugin_row_is_a_quantkit_option_and_ini_key(pytestconfig):
    rows = options.plugin_options()
    declared = _pytest_options()
    assert list(declared.options) == [options.pytest_flag(o.name) for o in rows]
    assert declared.ini == {"quantkit_" + o.name for o in rows}
    for option in rows:
        assert declared.options[options.pytest_flag(option.name)]["help"] == option.pytest_help
        assert pytestconfig.getoption("quantkit_" + option.name, default="absent") != "absent"
        assert options.pytest_flag(option.name) in plugin.__doc__  # the plugin's docstring lists it


def test_a_row_added_to_the_table_appears_in_the_cli_and_the_plugin(monkeypatch):
    row = Option("frobnicate", "frobnicate the case", Arg("--frobnicate", "frobnicate it", commands=("check",)))
    monkeypatch.setattr(options, "OPTIONS", (*options.OPTIONS, row))
    commands = _commands(cli.build_parser())
    assert commands["check"].parse_args(["--frobnicate", "x"]).frobnicate == "x"
    assert "--frobnicate" not in commands["tune"]._option_string_actions
    declared = _pytest_options()
    assert declared.options["--quantkit-frobnicate"]["dest"] == "quantkit_frobnicate"
    assert "quantkit_frobnicate" in declared.ini


def test_case_rows_are_case_fields_and_single_case_keywords():
    fields = {f.name for f in dataclasses.fields(Case)}
    keywords = set(inspect.signature(single_case).parameters)
    case_rows = {o.name for o in options.OPTIONS if o.case}
    assert case_rows <= fields & keywords
    assert keywords <= case_rows, "single_case takes an input no option gives"


CASE = {
    "model": "m.onnx",
    "calib": "calib",
    "coco_images": "images",
    "coco_ann": "ann.json",
    "val_images": "val",
    "imgsz": "192,320",
}


def _expected(case: Case) -> None:
    assert case.model == Path("m.onnx").resolve() and case.imgsz == (192, 320)
    for name in ("calib", "coco_images", "coco_ann", "val_images"):
        assert getattr(case, name) == Path(CASE[name]).resolve(), name


@pytest.mark.parametrize("command", options.CASE_COMMANDS)
def test_the_cli_builds_the_case_from_the_table(command):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in CASE.items() if k != "model"]
    args = cli.build_parser().parse_args([command, CASE["model"], *flags, "--calib-count", "7"])
    case = cli._manifest_from_args(args).cases[0]
    _expected(case)
    assert case.calib_count == 7


def test_the_plugin_builds_the_case_from_the_table(tmp_path):
    values = {"quantkit_" + k: v for k, v in CASE.items()}
    config = SimpleNamespace(
        getoption=values.get,
        getini=lambda name: None,
        stash={plugin.STATE: plugin.State({})},
        rootpath=tmp_path,
        invocation_params=SimpleNamespace(dir=tmp_path),
    )
    _expected(plugin._resolve(config).manifest.cases[0])
