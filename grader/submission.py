"""What a student handed in: find the checkpoint, name its form, read the manifest, check it cheaply.

    inspect_submission(path) -> Submission

Everything here runs in the grading process, so nothing is unpickled or imported: the form comes
from file names, magic bytes, zip listings and a scan of pickle opcodes (``pickletools`` reads the
opcodes without executing them). The child process (``grader.runner.child``) does the loading.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.sandbox.pickle_scan import PickleScan, allowed_global, stock_module_names
from grader.sandbox.precheck import (LIMITS, FileCheck, PrecheckLimits, check_file, entry_problems,
                                     is_data_pickle, refusal)

MANIFEST_NAME = "submission.toml"
MANIFEST_KEYS = {"student", "name", "weights", "entry", "history", "input"}
INPUT_KEYS = {"scale", "mean", "std"}
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_acc")
DEFAULT_ENTRY = "model.py:build_model"

TORCH_SUFFIXES = (".pt", ".pth", ".th", ".bin", ".ckpt", ".tar", ".pkl")
WEIGHT_SUFFIXES = TORCH_SUFFIXES + (".safetensors", ".pt2", ".onnx")
FORMS = ("pickled-module", "state-dict", "safetensors", "torchscript", "exported", "onnx", "run-folder")
NEEDS_CODE = {"state-dict", "safetensors"}


@dataclass(frozen=True)
class Submission:
    """A submission, inspected but not loaded.

    Attributes:
        path: what was handed in (file or folder), resolved.
        weights: the checkpoint file the child loads.
        form: one of ``FORMS``.
        sha256: hex digest of ``weights``.
        files: names of the files handed in, relative to ``path`` (sorted).
        manifest: the parsed submission.toml, or {}.
        entry: ``(file, callable name)`` that builds the network, for forms that need code; else None.
        input: ``{"scale", "mean", "std"}`` from the manifest, or None to use the form's default
            (the checkpoint's own for a run folder, the homework's ToTensor convention otherwise).
        history: per-epoch lists (any of ``HISTORY_KEYS``), or None.
        student: ``{"id", "name"}``.
    """

    path: Path
    weights: Path
    form: str
    sha256: str
    files: list[str]
    manifest: dict = field(default_factory=dict)
    entry: tuple[Path, str] | None = None
    input: dict | None = None
    history: dict | None = None
    student: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """The ``submission`` object of results.json (``input`` filled in later by the child)."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "format": self.form,
            "files": self.files,
            "manifest": self.manifest,
            "input": self.input,
        }


def inspect_submission(path: str | Path, *, limits: PrecheckLimits = LIMITS) -> Submission:
    """Find the checkpoint in ``path``, detect its form, parse the manifest and history.

    Args:
        path: a checkpoint file, or a folder (optionally holding ``submission.toml``).
        limits: the caps on the checkpoint (size, pickle size, entries, storages).

    Returns:
        the inspected Submission.

    Raises:
        GraderError: for a missing or ambiguous checkpoint, a bad manifest or history, an unknown
            or corrupt file, a pickle that names anything outside the allow-list, missing code.
    """
    path = Path(path).resolve()
    if not path.exists():
        raise GraderError(f"{path} does not exist", "pass the file or folder the student handed in")
    root = path if path.is_dir() else path.parent
    manifest = read_manifest(root / MANIFEST_NAME) if path.is_dir() else {}
    weights = find_weights(path, manifest)
    size = weights.stat().st_size
    if size == 0:
        raise GraderError(f"{weights.name} is empty (0 bytes)", "save the network again and re-submit")
    if size > limits.file_bytes:
        raise GraderError(f"{weights.name} is {size / 2**20:.0f} MiB, over the "
                          f"{limits.file_bytes / 2**20:.0f} MiB limit", "hand in only the trained network")
    check = check_file(weights, limits)  # zip bombs, storages that claim more than they hold, legacy pickles
    form = detect_form(weights, check, limits=limits)  # its refusals say more, so they come first
    if check.problems:
        raise refusal(weights, check.problems)

    entry = None
    if form in NEEDS_CODE:
        entry = parse_entry(root, manifest.get("entry"), form=form, weights=weights)
    history = None
    history_name = manifest.get("history")
    if history_name:
        history = read_history(_inside(root, history_name, "history"))
    elif path.is_dir():
        for name in ("history.json", "history.csv"):
            if (root / name).is_file():
                history = read_history(_inside(root, name, "history"))
                break
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if path.is_dir() \
        else [path.name]
    student = manifest.get("student", "").strip() or (path.name if path.is_dir() else path.stem)
    return Submission(
        path=path, weights=weights, form=form, sha256=sha256_file(weights), files=files,
        manifest=manifest, entry=entry, input=manifest.get("input"), history=history,
        student={"id": student, "name": manifest.get("name", "").strip() or student},
    )


# --- manifest --------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict:
    """Parse and validate ``submission.toml``; {} when absent.

    Raises:
        GraderError: naming the file and the key at fault for bad TOML, an unknown key or a wrong type.
    """
    if not path.is_file():
        return {}
    try:
        manifest = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # -sig: Windows Notepad's BOM
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GraderError(f"{path} is not valid TOML: {exc}", "see docs/grading.md for the format") from None
    unknown = set(manifest) - MANIFEST_KEYS
    if unknown:
        raise GraderError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}",
                          f"known keys: {', '.join(sorted(MANIFEST_KEYS))}")
    for key in ("student", "name", "weights", "entry", "history"):
        if key in manifest and not isinstance(manifest[key], str):
            raise GraderError(f"{path}: {key} must be a string, got {manifest[key]!r}",
                              f'write it in quotes, e.g. {key} = "..."')
    if "input" in manifest:
        manifest["input"] = parse_input(manifest["input"], where=f"{path} [input]")
    return manifest


def parse_input(table: object, *, where: str) -> dict:
    """Validate an input-normalisation table into ``{"scale": float, "mean": list|None, "std": list|None}``."""
    if not isinstance(table, dict):
        raise GraderError(f"{where} must be a table", "write [input] with scale, mean, std below it")
    unknown = set(table) - INPUT_KEYS
    if unknown:
        raise GraderError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}", "known: scale, mean, std")
    scale = table.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        raise GraderError(f"{where}: scale must be a positive number, got {scale!r}",
                          "1.0 when the network expects 0..1 pixels, 255.0 for 0..255")
    out = {"scale": float(scale), "mean": None, "std": None}
    for key in ("mean", "std"):
        value = table.get(key)
        if value is None:
            continue
        ok = (isinstance(value, list) and len(value) == 3
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
        if not ok or (key == "std" and min(value) <= 0):
            raise GraderError(f"{where}: {key} must be three numbers (R, G, B){' > 0' if key == 'std' else ''},"
                              f" got {value!r}", f"e.g. {key} = [0.5, 0.5, 0.5]")
        out[key] = [float(v) for v in value]
    return out


def parse_entry(root: Path, entry: str | None, *, form: str, weights: Path) -> tuple[Path, str]:
    """Resolve ``"file.py:callable"`` (default ``model.py:build_model``) to an existing file.

    Raises:
        GraderError: when the entry is malformed or its file is missing.
    """
    spec = entry or DEFAULT_ENTRY
    file_name, sep, name = spec.partition(":")
    if not sep or not file_name.endswith(".py") or not name.isidentifier():
        raise GraderError(f'entry = "{spec}" is not "file.py:callable"', 'e.g. entry = "model.py:Net"')
    file = _inside(root, file_name, "entry")
    if not file.is_file():
        raise GraderError(
            f"{weights.name} holds only weights ({form}), and {file_name} is missing",
            "hand in a folder with model.py defining build_model() that returns the network, "
            'or name it in submission.toml: entry = "file.py:NameOfClassOrFunction"')
    return file, name


def _inside(root: Path, name: str, key: str) -> Path:
    """``root / name``, refusing paths that leave the submission folder."""
    path = (root / name).resolve()
    if root not in path.parents and path != root:
        raise GraderError(f"{key} = {name!r} points outside the submission folder (a path or a link "
                          "that leaves it: another student's files, say)",
                          "hand in the file itself, inside the folder, and name it relative to the folder")
    return path


# --- which file, which form ------------------------------------------------------------------


def find_weights(path: Path, manifest: dict) -> Path:
    """The checkpoint: ``path`` itself, the manifest's ``weights``, or the folder's only weight file."""
    if path.is_file():
        return path
    if "weights" in manifest:
        weights = _inside(path, manifest["weights"], "weights")
        if not weights.is_file():
            raise GraderError(f'weights = "{manifest["weights"]}" in submission.toml: no such file in {path}',
                              "fix the name, or hand in the file")
        return weights
    if (path / "checkpoint.pt").is_file():  # a run folder written by `grader train`
        return _inside(path, "checkpoint.pt", "weights")
    candidates = sorted(_inside(path, str(p.relative_to(path)), "weights") for p in path.rglob("*")
                        if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES and not p.name.startswith("."))
    if not candidates:
        raise GraderError(f"no checkpoint in {path} (looked for {', '.join(WEIGHT_SUFFIXES)})",
                          "hand in the saved network, e.g. torch.save(net, 'model.pth')")
    if len(candidates) > 1:
        names = ", ".join(str(p.relative_to(path)) for p in candidates)
        raise GraderError(f"{path} holds several checkpoints: {names}",
                          f'say which in {MANIFEST_NAME}: weights = "{candidates[0].relative_to(path)}"')
    return candidates[0]


def detect_form(weights: Path, check: FileCheck, *, limits: PrecheckLimits = LIMITS) -> str:
    """Name the form of ``weights`` from its suffix, magic bytes and (for torch pickles) its globals.

    Args:
        weights: the checkpoint.
        check: the pre-check of ``weights``, whose pickle scans are reused (not read again).

    Raises:
        GraderError: for an unknown or corrupt file, or a pickle naming a global outside the allow-list.
    """
    suffix = weights.suffix.lower()
    with weights.open("rb") as f:
        head = f.read(16)
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".safetensors" or _looks_like_safetensors(head):
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return _zip_form(weights, check, limits)
    if head[:1] == b"\x80":
        raise GraderError(
            f"{weights.name} is a plain or legacy pickle, which cannot be loaded safely",
            "save with a current torch: torch.save(net, 'model.pth') (or its state_dict plus model.py)")
    raise GraderError(f"{weights.name}: unknown format (starts with {head[:8]!r})",
                      "hand in a torch.save file, safetensors, TorchScript, a .pt2 from torch.export, "
                      "or ONNX; see docs/grading.md")


def _looks_like_safetensors(head: bytes) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON object."""
    return len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 1 << 28


def _zip_form(weights: Path, check: FileCheck, limits: PrecheckLimits) -> str:
    try:
        with zipfile.ZipFile(weights) as archive:
            problems = entry_problems(archive, weights.stat().st_size, limits)
            if problems:  # a zip bomb: testzip() below would inflate it in this process
                raise refusal(weights, problems)
            names = archive.namelist()
            bad = archive.testzip()  # CRC of every member: catches truncation and bit rot
            if bad is not None:
                raise GraderError(f"{weights.name} is corrupt ({bad} fails its checksum)",
                                  "save the network again and re-submit")
            if any(n.endswith("archive_format") for n in names) and any("/models/" in n for n in names):
                return "exported"
            if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
                return "torchscript"
            pickles = [n for n in names if is_data_pickle(n)]
            if len(pickles) != 1:
                raise GraderError(f"{weights.name} is a zip file but not a torch.save checkpoint",
                                  "hand in the file torch.save wrote, not an archive of files")
            info = archive.getinfo(pickles[0])
            if info.file_size > limits.pickle_bytes:
                raise GraderError(f"{weights.name}: its pickle is {info.file_size} bytes, too large to check",
                                  "save only the network (or its state_dict)")
    except zipfile.BadZipFile as exc:
        raise GraderError(f"{weights.name} is truncated or corrupt ({exc})",
                          "save the network again and re-submit") from None
    scan = check.pickles.get(pickles[0])
    if scan is None:  # the pre-check could not read it, and says why
        raise refusal(weights, check.problems)
    return _pickle_form(weights, scan)


def _pickle_form(weights: Path, scan: PickleScan) -> str:
    """Classify a torch.save pickle by the globals and strings it names, refusing foreign globals."""
    if scan.error:
        raise GraderError(f"{weights.name} is corrupt: its pickle cannot be read ({scan.error})",
                          "save the network again and re-submit")
    foreign = sorted({g for g in scan.globals if not allowed_global(g)})
    if foreign:
        own = [g for g in foreign if g.startswith("__main__.")]
        hint = ("your network's class is defined in your own script, which the grader cannot trust: "
                "hand in torch.save(net.state_dict(), 'weights.pth') plus model.py with build_model()"
                if own else "it was refused without being run; hand in plain weights or stock torch.nn layers")
        raise GraderError(f"{weights.name} asks to load {', '.join(foreign[:5])}, outside the allowed "
                          "torch.nn classes", hint)
    if any(g in stock_module_names() for g in scan.globals):
        return "pickled-module"
    if "grader-checkpoint" in scan.strings:
        return "run-folder"
    return "state-dict"


# --- history and digest ----------------------------------------------------------------------


def read_history(path: Path) -> dict:
    """Per-epoch lists from JSON (dict of lists, or list of per-epoch dicts) or CSV with a header.

    Raises:
        GraderError: for a missing or malformed file, or non-numeric values.
    """
    if not path.is_file():
        raise GraderError(f"history file {path.name} is missing", "fix history = ... in submission.toml")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".csv":
            rows = list(csv.DictReader(io.StringIO(text)))
        else:
            rows = json.loads(text)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise GraderError(f"{path.name} cannot be read: {exc}", "write JSON or CSV, see docs/grading.md") from None
    return normalise_history(rows, where=path.name)


def normalise_history(rows: object, *, where: str) -> dict:
    """``{"train_loss": [...], ...}`` from a dict of lists or a list of dicts; keeps only ``HISTORY_KEYS``."""
    if isinstance(rows, list):
        if not all(isinstance(r, dict) for r in rows):
            raise GraderError(f"{where}: a list must hold one object per epoch", "see docs/grading.md")
        keys = {k for r in rows for k in r}
        rows = {k: [r.get(k) for r in rows] for k in keys}
    if not isinstance(rows, dict):
        raise GraderError(f"{where}: expected per-epoch lists", 'e.g. {"train_loss": [1.2, 0.8], ...}')
    history: dict[str, list[float]] = {}
    for key in HISTORY_KEYS:
        values = rows.get(key)
        if values is None:
            continue
        if not isinstance(values, list):
            values = [values]
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            raise GraderError(f"{where}: {key} holds a value that is not a number",
                              "write numbers only, one per epoch") from None
        if not all(math.isfinite(v) for v in numbers):
            raise GraderError(f"{where}: {key} holds NaN or infinity", "log finite values only")
        history[key] = [int(v) for v in numbers] if key == "epoch" else numbers
    if not history:
        raise GraderError(f"{where} has none of {', '.join(HISTORY_KEYS)}",
                          "log train_loss, train_acc and test_acc once per epoch")
    return history


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
