"""The one declared table of a run's options: the CLI's case arguments and the pytest plugin's options come from it.

Each row of ``OPTIONS`` is one setting. The plugin takes every row with a ``pytest_help`` as ``--quantkit-<name>``
(also read from ``[tool.quantkit]`` and the ini file as ``name``); the CLI adds a row's ``cli`` argument to each
command it names, before the command's own arguments. A ``case`` row fills the ``Case`` field of its name (a keyword
of ``manifest.single_case``) when a model is given without a manifest, on either surface.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import providers
from .errors import QuantkitError
from .manifest import DEFAULT_CALIB_COUNT

CASE_COMMANDS = ("check", "tune")  # the commands that run a case
DEFAULT_MANIFEST = "fixtures/manifest.toml"
IMGSZ_HELP = (
    "input height and width in pixels for dynamic H/W: 640 (square), 640x640 or 640,640; a multiple of the model's "
    "stride (its metadata's, else its head's, else 32), 32..4096"
)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


class Imgsz(argparse.Action):
    """``--imgsz 640``, ``640x640`` or ``640,640`` (one token; the CLI's parser joins ``H W`` into one)."""

    def __init__(self, option_strings, dest, **kwargs):
        kwargs.setdefault("help", IMGSZ_HELP)
        super().__init__(option_strings, dest, metavar="HxW", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from .manifest import parse_imgsz

        try:
            setattr(namespace, self.dest, parse_imgsz(values))
        except QuantkitError:
            parser.error(f"argument {option_string}: '{values}' is not a size: write 640, 640x640 or 640,640")


@dataclass(frozen=True)
class Arg:
    """How the command line takes an option: ``parser.add_argument(flag, ...)`` in each of ``commands``."""

    flag: str  # "--calib", or "model" for a positional
    help: str
    commands: tuple[str, ...] = CASE_COMMANDS
    metavar: str | None = None
    type: Callable[[str], object] | None = None
    action: Callable[..., argparse.Action] | None = None
    nargs: str | None = None
    default: object = None

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        keys = ("help", "metavar", "type", "action", "nargs", "default")
        parser.add_argument(self.flag, **{k: getattr(self, k) for k in keys if getattr(self, k) is not None})


@dataclass(frozen=True)
class Option:
    """One setting: ``name`` is its key (and its Case field when ``case``); where each surface takes it."""

    name: str
    pytest_help: str | None = None  # the plugin's --quantkit-<name>; None: the plugin lacks it
    cli: Arg | None = None  # None: the CLI lacks it
    case: bool = False  # fills Case.<name>


OPTIONS: tuple[Option, ...] = (
    Option("manifest", f"manifest TOML of cases x configs x thresholds (default {DEFAULT_MANIFEST})"),
    Option(
        "model",
        "an FP32 ONNX model to gate, instead of a manifest",
        Arg(
            "model",
            "FP32 ONNX detector (default: the fixture in fixtures/, with its data)",
            metavar="MODEL",
            type=Path,
            nargs="?",
        ),
        case=True,
    ),
    Option(
        "calib",
        "calibration image folder for --quantkit-model",
        Arg("--calib", "calibration image folder (static configurations)", metavar="DIR", type=Path),
        case=True,
    ),
    Option(
        "calib_count",
        cli=Arg(
            "--calib-count",
            "calibration images drawn from --calib with a fixed seed; without other validation images, the "
            "folder's other images (at least a quarter) are held out for validation",
            metavar="N",
            type=positive_int,
            default=DEFAULT_CALIB_COUNT,
        ),
        case=True,
    ),
    Option(
        "coco_images",
        "evaluation image folder for --quantkit-model",
        Arg("--coco-images", "evaluation image folder", metavar="DIR", type=Path),
        case=True,
    ),
    Option(
        "coco_ann",
        "COCO instances JSON for --quantkit-model",
        Arg("--coco-ann", "COCO instances JSON of the evaluation images", metavar="JSON", type=Path),
        case=True,
    ),
    Option(
        "val_images",
        "unlabelled validation images for --quantkit-model (default: held out of --quantkit-calib)",
        Arg(
            "--val-images",
            "unlabelled validation images: accuracy as agreement with FP32 (default without "
            "annotations: images held out of --calib with a fixed seed)",
            metavar="DIR",
            type=Path,
        ),
        case=True,
    ),
    Option(
        "imgsz",
        "input size 'H' or 'H,W' for --quantkit-model with dynamic axes",
        Arg("--imgsz", IMGSZ_HELP, action=Imgsz),
        case=True,
    ),
    Option(
        "class_map",
        "JSON/TOML of class index -> category id or name for --quantkit-model (default: by class name)",
        Arg(
            "--class-map",
            "JSON/TOML of class index -> category id or name (default: match the model's class names)",
            metavar="FILE",
            type=Path,
        ),
        case=True,
    ),
    Option("preset", "run every case under this one preset instead of the manifest's configs (e.g. naive)"),
    Option("config", "comma-separated config ids to run (default: all of the manifest's)"),
    Option("ep", f"execution provider for the accuracy and latency gates ({providers.listing()})"),
    Option("latency_threads", "comma-separated intra-op thread counts the latency gate times at (default 1,2)"),
    Option("save_baseline", "save this run's metrics as baseline NAME (only when every test passed)"),
    Option("compare", "compare against baseline NAME and fail on regressions"),
    Option("results", "write per-(case, config) results files under DIR/<onnxruntime version>/"),
    Option("cache_dir", "where quantized models are cached (default $QUANTKIT_CACHE or ~/.cache/quantkit)"),
    Option("undecided", "a gate whose interval holds its threshold: 'fail' the test (default) or 'skip' it"),
)


def plugin_options() -> list[Option]:
    """The rows the pytest plugin takes, in table order."""
    return [o for o in OPTIONS if o.pytest_help]


def cli_options(command: str) -> list[Option]:
    """The rows ``quantkit <command>`` takes, in table order."""
    return [o for o in OPTIONS if o.cli and command in o.cli.commands]


def pytest_flag(name: str) -> str:
    """The plugin's option for setting ``name``: coco_ann -> --quantkit-coco-ann."""
    return "--quantkit-" + name.replace("_", "-")
