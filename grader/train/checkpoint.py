"""The run folder: checkpoint.pt, history.json, submission.toml (docs/checkpoint-format.md).

    make_checkpoint(result, recipe, data, seed) -> dict      pure
    write_run(folder, checkpoint)                           atomic writes
    read_run(folder) -> dict                                weights_only load, checked
    rebuild(checkpoint) -> nn.Module
    resume_state(checkpoint) -> TrainState                  where a stopped run continues
"""

from __future__ import annotations

import io
import json
import numbers
import platform
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from grader import __version__, atomic
from grader.data import Cifar10
from grader.errors import GraderError
from grader.models import build
from grader.train.loop import TrainResult
from grader.train.recipes import Recipe
from grader.train.state import TrainState

FORMAT = "grader-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("arch", "dataset", "history", "input", "recipe", "seed", "state_dict")  # what --resume reads
# The types of the ``resume`` entry's values (TrainState's fields; numbers as torch.save kept them).
RESUME_TYPES = {"epoch": numbers.Integral, "step": numbers.Integral, "loss_sum": numbers.Real,
                "correct": numbers.Integral, "seen": numbers.Integral, "elapsed_s": numbers.Real,
                "rng": (torch.Tensor, type(None)), "history": dict, "optimizer": dict}
CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.json"
SUBMISSION_NAME = "submission.toml"


def versions() -> dict:
    """Library versions that produced a checkpoint."""
    try:
        torchvision = metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        torchvision = ""
    return {"grader": __version__, "torch": str(torch.__version__), "torchvision": torchvision,
            "python": platform.python_version()}


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights on the CPU in the default (contiguous NCHW) layout, whatever trained them."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def make_checkpoint(result: TrainResult, recipe: Recipe, data: Cifar10, seed: int,
                    subset: int | None = None) -> dict:
    """The self-describing checkpoint dict (weights_only-loadable) for a training result."""
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": {"name": recipe.arch, "args": dict(recipe.arch_args)},
        "state_dict": cpu_state_dict(result.model),
        "input": recipe.input_spec(),
        "recipe": recipe.to_dict(),
        "history": result.history,
        "dataset": {**data.identity(), "train_subset": subset},
        "versions": versions(),
        "seed": seed,
        "stopped": result.stopped,
    }
    if result.resume is not None:
        ckpt["resume"] = result.resume.to_dict()
    return ckpt


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def submission_toml(student: str, input_spec: dict, weights: str = CHECKPOINT_NAME, *,
                    name: str = "", entry: str | None = None) -> str:
    """submission.toml text telling `grader grade` how to load the run folder with no flags
    (with ``name`` and ``entry`` when given: a state_dict folder names its model.py)."""
    floats = lambda xs: "[" + ", ".join(repr(float(x)) for x in xs) + "]"  # noqa: E731
    return (
        f"student = {_toml_string(student)}\n"
        + (f"name = {_toml_string(name)}\n" if name else "")
        + (f"entry = {_toml_string(entry)}\n" if entry else "")
        + f"weights = {_toml_string(weights)}\n"
        f"history = {_toml_string(HISTORY_NAME)}\n"
        "\n[input]\n"
        f"scale = {float(input_spec['scale'])!r}\n"
        f"mean = {floats(input_spec['mean'])}\n"
        f"std = {floats(input_spec['std'])}\n"
    )


def write_run(folder: str | Path, checkpoint: dict) -> Path:
    """Write checkpoint.pt, history.json and submission.toml into ``folder``, each atomically.

    The checkpoint goes first: history.json is then never ahead of it (a crash between the two
    leaves the older history.json, which the checkpoint's own history supersedes).
    """
    folder = Path(folder)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic.write_bytes(folder / CHECKPOINT_NAME, buffer.getvalue())
    atomic.write_json(folder / HISTORY_NAME, checkpoint["history"])
    atomic.write_text(folder / SUBMISSION_NAME, submission_toml(folder.resolve().name, checkpoint["input"]))
    return folder


def read_run(folder: str | Path) -> dict:
    """Load a run folder's checkpoint safely (``weights_only=True``) and check its format.

    Raises:
        GraderError: when the folder has no checkpoint.pt, or it is not a grader checkpoint.
    """
    path = Path(folder) / CHECKPOINT_NAME
    if not path.is_file():
        raise GraderError(f"{path} does not exist", "--resume takes a run folder written by `grader train`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: say which, never unpickle unsafely
        raise GraderError(f"{path} could not be loaded as a weights-only checkpoint: {exc}",
                          "it must be a checkpoint.pt written by `grader train`") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise GraderError(f"{path} is not a grader checkpoint (no format = {FORMAT!r})",
                          "--resume takes a run folder written by `grader train`")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise GraderError(f"{path} has checkpoint format_version {ckpt.get('format_version')!r}",
                          f"this grader reads version {FORMAT_VERSION}")
    missing = [key for key in REQUIRED_KEYS if key not in ckpt]
    if missing:
        raise GraderError(f"{path} lacks {', '.join(missing)}: it was damaged or edited",
                          "resume from an untouched run folder, or start a new run")
    if "resume" in ckpt:
        _check_resume_entry(ckpt["resume"], path)
    return ckpt


def _check_resume_entry(entry, path: Path) -> None:
    """Refuse a ``resume`` entry that ``TrainState.from_dict`` could not take as it is."""
    if not isinstance(entry, dict):
        raise GraderError(f"{path}: its resume entry is not a dict: it was damaged or edited",
                          "resume from an untouched run folder, or start a new run")
    missing = [key for key in RESUME_TYPES if key not in entry]
    wrong = [key for key, kind in RESUME_TYPES.items()
             if key in entry and (not isinstance(entry[key], kind) or isinstance(entry[key], bool))]
    if missing or wrong:
        problems = ([f"lacks {', '.join(missing)}"] if missing else []) + \
                   ([f"has the wrong type for {', '.join(wrong)}"] if wrong else [])
        raise GraderError(f"{path}: its resume entry {' and '.join(problems)}: it was damaged or edited",
                          "resume from an untouched run folder, or start a new run")


def resume_state(checkpoint: dict) -> TrainState:
    """The state a stopped run continues from: its checkpoint's ``resume`` entry, as ``read_run``
    checked it.

    Raises:
        KeyError: when the checkpoint has no ``resume`` entry (its run is complete).
    """
    return TrainState.from_dict(checkpoint["resume"])


def rebuild(checkpoint: dict) -> nn.Module:
    """The checkpoint's network with its weights loaded (strictly: every key must match).

    Raises:
        GraderError: an architecture this grader does not know, or weights that do not fit it.
    """
    try:
        net = build(checkpoint["arch"]["name"], **checkpoint["arch"]["args"])
        net.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:  # another grader's network, or edited weights
        raise GraderError(f"the checkpoint's network cannot be rebuilt: {str(exc).splitlines()[0][:300]}",
                          "resume with the grader version that wrote it, or start a new run") from None
    return net
