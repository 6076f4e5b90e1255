"""``submission.toml``: the manifest, its [input] table and the entry that builds the network.

    read_manifest(path) -> dict                       {} when absent
    parse_input(table, where=...) -> {"scale", "mean", "std"}
    parse_entry(root, entry, form=..., weights=...) -> (file, callable name)
    parse_classes(names, where=...) -> CIFAR-10's names, in the order of the network's outputs
    resolve_inside(root, name, key) -> Path           a name the manifest gives, kept in the folder
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

from grader.data.dataset import CLASSES
from grader.errors import GraderError
from grader.messages import say

MANIFEST_NAME = "submission.toml"
MANIFEST_KEYS = {"student", "name", "weights", "entry", "history", "input", "classes"}
# The PyTorch CIFAR-10 tutorial's names for the two classes it spells differently.
CLASS_ALIASES = {"plane": "airplane", "car": "automobile"}
INPUT_KEYS = {"scale", "mean", "std", "channels"}
DEFAULT_ENTRY = "model.py:build_model"
MANIFEST_BYTES = 64 << 10  # a manifest is a few lines


def read_manifest(path: Path) -> dict:
    """Parse and validate ``submission.toml``; {} when absent.

    A manifest that is a link is refused unread (it could lead to any file on the grading
    machine), and so is one over ``MANIFEST_BYTES``.

    Raises:
        GraderError: naming the file and the key at fault for bad TOML, an unknown key or a wrong type.
    """
    text = _manifest_text(path)
    if text is None:
        return {}
    try:
        manifest = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GraderError(say("manifest.not_toml", file=str(path), reason=str(exc))) from None
    except RecursionError:
        raise GraderError(say("manifest.too_deep", file=str(path))) from None
    unknown = set(manifest) - MANIFEST_KEYS
    if unknown:
        raise GraderError(say("manifest.unknown_keys", file=str(path),
                              keys=", ".join(_shown(k) for k in sorted(unknown)[:10]),
                              known=", ".join(sorted(MANIFEST_KEYS))))
    for key in ("student", "name", "weights", "entry", "history"):
        if key in manifest and not isinstance(manifest[key], str):
            raise GraderError(say("manifest.not_string", file=str(path), key=key, value=_shown(manifest[key])))
    if "input" in manifest:
        manifest["input"] = parse_input(manifest["input"], where=f"{path} [input]")
    if "classes" in manifest:
        manifest["classes"] = parse_classes(manifest["classes"], where=f"{path}: classes")
    return manifest


def _manifest_text(path: Path) -> str | None:
    """The text of the manifest at ``path``, None when there is none; never read through a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            raise GraderError(say("manifest.link", file=path.name)) from None
        if os.path.isdir(path):
            return None
        raise GraderError(say("manifest.unreadable", file=path.name, reason=str(exc.strerror))) from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if stat.S_ISDIR(info.st_mode):
            return None
        if not stat.S_ISREG(info.st_mode) or info.st_size > MANIFEST_BYTES:
            raise GraderError(say("manifest.too_large", file=path.name, kib=MANIFEST_BYTES >> 10))
        data = f.read(MANIFEST_BYTES + 1)
    try:
        return data.decode("utf-8-sig")  # -sig: Windows Notepad's BOM
    except UnicodeDecodeError as exc:  # its own message would quote the file's bytes
        raise GraderError(say("manifest.not_utf8", file=str(path), byte=exc.start)) from None


def _shown(value: object, limit: int = 60) -> str:
    """A value from the manifest, for a message: its repr, cut short; a table or array by its type
    (a catalogue message)."""
    if not isinstance(value, (str, int, float, bool)):
        return say("value.of_type", kind=type(value).__name__)
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_input(table: object, *, where: str) -> dict:
    """Validate an input-normalisation table into ``{"scale": float, "mean": list|None, "std": list|None}``."""
    if not isinstance(table, dict):
        raise GraderError(say("input.not_table", where=where))
    unknown = set(table) - INPUT_KEYS
    if unknown:
        raise GraderError(say("input.unknown_keys", where=where,
                              keys=", ".join(_shown(k) for k in sorted(map(str, unknown))[:10])))
    scale = table.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        raise GraderError(say("input.bad_scale", where=where, value=_shown(scale)))
    channels = table.get("channels", "rgb")
    if channels not in ("rgb", "bgr"):
        raise GraderError(say("input.bad_channels", where=where, value=_shown(channels)))
    out = {"scale": float(scale), "mean": None, "std": None}
    if channels == "bgr":
        out["channels"] = "bgr"  # left out for RGB: what every earlier results.json holds
    for key in ("mean", "std"):
        value = table.get(key)
        if value is None:
            continue
        ok = (isinstance(value, list) and len(value) == 3
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
        if not ok or (key == "std" and min(value) <= 0):
            raise GraderError(say("input.bad_triple", where=where, key=key, bound=" > 0" if key == "std" else "",
                                  value=_shown(value)))
        out[key] = [float(v) for v in value]
    return out


def parse_classes(names: object, *, where: str) -> list[str]:
    """The order of the network's outputs as CIFAR-10's names (``plane``/``car`` read as
    ``airplane``/``automobile``, any case).

    Raises:
        GraderError: unless ``names`` is the 10 classes, each once.
    """
    tutorial = {name: alias for alias, name in CLASS_ALIASES.items()}
    known = tuple(say("classes.alias", name=c, alias=tutorial[c]) if c in tutorial else c for c in CLASSES)
    if not (isinstance(names, list) and len(names) == len(CLASSES) and all(isinstance(n, str) for n in names)):
        raise GraderError(say("classes.not_list", where=where, count=len(CLASSES), value=_shown(names), known=known))
    read = [CLASS_ALIASES.get(n.strip().lower(), n.strip().lower()) for n in names]
    unknown = [n for n, r in zip(names, read) if r not in CLASSES]
    if unknown:
        raise GraderError(say("classes.unknown", where=where, names=", ".join(map(_shown, unknown)), known=known))
    repeated = sorted({n for n in read if read.count(n) > 1})
    if repeated:
        missing = [c for c in CLASSES if c not in read]
        raise GraderError(say("classes.repeated", where=where, repeated=", ".join(repeated),
                              missing=", ".join(missing)))
    return read


def parse_entry(root: Path, entry: str | None, *, form: str, weights: Path) -> tuple[Path, str]:
    """Resolve ``"file.py:callable"`` (default ``model.py:build_model``) to an existing file.

    Raises:
        GraderError: when the entry is malformed or its file is missing.
    """
    spec = entry or DEFAULT_ENTRY
    file_name, sep, name = spec.partition(":")
    if not sep or not file_name.endswith(".py") or not name.isidentifier():
        raise GraderError(say("entry.malformed", spec=spec))
    file = resolve_inside(root, file_name, "entry")
    if not file.is_file():
        raise GraderError(say("entry.file_missing", weights=weights.name, form=form, file=file_name))
    return file, name


def resolve_inside(root: Path, name: str, key: str) -> Path:
    """``root / name``, refusing paths that leave the submission folder."""
    try:
        path = (root / name).resolve()
    except (ValueError, OSError):  # a NUL byte in the name, a name too long
        raise GraderError(say("path.not_a_name", key=key, value=_shown(name))) from None
    if root not in path.parents and path != root:
        raise GraderError(say("path.outside", key=key, value=_shown(name)))
    return path
