"""Readers for every CIFAR-10 source format. Each returns a ``Converted`` with both splits.

Pure of caching: these read a source and validate it; ``cache.py`` stores what they return.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator

import numpy as np

from grader.data.dataset import CLASSES, FULL_COUNTS
from grader.errors import GraderError
from grader.messages import say

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm"}
OFFICIAL_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


@dataclass
class Converted:
    """Both splits read from one source. Images uint8 (n, 32, 32, 3) RGB; labels int64 (n,)."""

    kind: str
    official: bool
    splits: dict[str, tuple[np.ndarray, np.ndarray]]


def detect_kind(path: Path) -> str:
    """Name the format of ``path`` or raise GraderError saying what was expected."""
    if not path.exists():
        raise GraderError(say("data.not_found", path=str(path)))
    if path.is_dir():
        if _official_folder(path) is not None:
            return "official-folder"
        if _tree_root(path) is not None:
            return "image-tree"
        raise GraderError(
            f"{path} is neither a cifar-10-batches-py folder nor an image tree",
            "an image tree needs train/<class>/ and test/<class>/ folders for the ten classes",
        )
    if not tarfile.is_tarfile(path):
        raise GraderError(
            f"{path} is not a tar archive (or it is corrupt)",
            "give the official cifar-10-python.tar.gz or a .tar.gz of an image tree",
        )
    names = _tar_names(path)
    if any(PurePosixPath(n).name == "test_batch" for n in names):
        return "official-archive"
    if any(_split_class_of(n) for n in names):
        return "image-tree-archive"
    raise GraderError(
        f"{path} holds neither cifar-10-batches-py/ nor train/<class>/ and test/<class>/ images",
        "check that the archive is CIFAR-10",
    )


def read_source(path: Path, *, expect_full: bool = True) -> Converted:
    """Read and validate any supported source at ``path``.

    Args:
        path: the archive or folder.
        expect_full: require the official counts (50,000 / 10,000, balanced); tests and
            subsets pass False, which still requires every class in every split.

    Raises:
        GraderError: naming the file and the problem, for every malformed input.
    """
    kind = detect_kind(path)
    if kind == "official-folder":
        folder = _official_folder(path)
        assert folder is not None
        converted = _read_official(lambda name: (folder / name).read_bytes(), str(folder), kind)
    elif kind == "official-archive":
        converted = _read_official_archive(path)
    elif kind == "image-tree":
        root = _tree_root(path)
        assert root is not None
        files = sorted(p for p in root.rglob("*") if p.is_file())
        entries = ((str(p.relative_to(root)), p.read_bytes) for p in files)
        converted = _read_tree(entries, str(path), kind)
    else:
        converted = _read_tree_archive(path)
    check_counts(converted.splits, str(path), expect_full)
    return converted


# --- the official python format ------------------------------------------------------------


class _BatchUnpickler(pickle.Unpickler):
    """The official batches are pickles; allow only what rebuilds their numpy arrays."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol 2
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name} in a CIFAR-10 batch")
        return super().find_class(module, name)


def _official_md5s() -> dict[str, str]:
    from torchvision.datasets import CIFAR10  # the published checksums live there

    return dict(CIFAR10.train_list + CIFAR10.test_list)


def _read_official(read: Callable[[str], bytes], where: str, kind: str) -> Converted:
    expected = _official_md5s()
    official = True
    splits = {}
    for split, names in OFFICIAL_BATCHES.items():
        images, labels = [], []
        for name in names:
            try:
                raw = read(name)
            except (FileNotFoundError, KeyError):
                raise GraderError(f"{where}: {name} is missing", "re-extract the archive") from None
            official &= hashlib.md5(raw).hexdigest() == expected.get(name)
            try:
                batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
                data = np.asarray(batch[b"data"], dtype=np.uint8)
                batch_labels = np.asarray(batch[b"labels"], dtype=np.int64)
            except Exception as exc:
                raise GraderError(f"{where}/{name} is corrupt: {exc}", "download it again") from None
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(batch_labels):
                raise GraderError(
                    f"{where}/{name}: data of shape {data.shape} is not n x 3072 CIFAR-10 rows",
                    "download it again",
                )
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # NCHW -> NHWC
            labels.append(batch_labels)
        splits[split] = (np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels))
    return Converted(kind, official, splits)


def _official_folder(path: Path) -> Path | None:
    for candidate in (path, path / "cifar-10-batches-py"):
        if (candidate / "test_batch").is_file():
            return candidate
    return None


def _read_official_archive(path: Path) -> Converted:
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in OFFICIAL_BATCHES["train"] + OFFICIAL_BATCHES["test"]:
                    f = tar.extractfile(member)
                    assert f is not None
                    members[name] = f.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise GraderError(f"{path} is corrupt: {exc}", "download the archive again") from None
    return _read_official(members.__getitem__, str(path), "official-archive")


# --- image trees ---------------------------------------------------------------------------


def _split_class_of(name: str) -> tuple[str, str] | None:
    """For a path like ``[prefix/]train/cat/0001.png`` return ("train", "cat")."""
    parts = PurePosixPath(name).parts
    if len(parts) < 3 or PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    split, cls = parts[-3], parts[-2]
    return (split, cls) if split in FULL_COUNTS else None


def _tree_root(path: Path) -> Path | None:
    for candidate in [path, *sorted(p for p in path.iterdir() if p.is_dir())]:
        if (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return candidate
    return None


def _tar_names(path: Path) -> list[str]:
    try:
        with tarfile.open(path) as tar:
            return tar.getnames()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise GraderError(f"{path} is corrupt: {exc}", "download or create it again") from None


def _read_tree_archive(path: Path) -> Converted:
    def entries() -> Iterator[tuple[str, Callable[[], bytes]]]:
        with tarfile.open(path) as tar:
            for member in tar:
                if member.isfile() and _split_class_of(member.name):
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    yield member.name, (lambda data=data: data)

    try:
        return _read_tree(entries(), str(path), "image-tree-archive")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise GraderError(f"{path} is corrupt: {exc}", "download or create it again") from None


def _read_tree(
    entries: Iterable[tuple[str, Callable[[], bytes]]], where: str, kind: str
) -> Converted:
    """Decode every ``split/class/file`` image; order: split, class index, file name."""
    from PIL import Image, UnidentifiedImageError

    found: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    for name, read in entries:
        split_cls = _split_class_of(name)
        if split_cls is None:
            continue
        split, cls = split_cls
        if cls not in CLASSES:
            raise GraderError(
                f"{where}: {name} is in an unknown class folder '{cls}'",
                f"class folders must be named {', '.join(CLASSES)}",
            )
        try:
            with Image.open(io.BytesIO(read())) as img:
                img.load()
                mode, size = img.mode, img.size
                pixels = np.asarray(img)
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise GraderError(f"{where}: {name} is not a readable image ({exc})",
                              "remove or replace that file") from None
        if size != (32, 32) or mode != "RGB":
            raise GraderError(
                f"{where}: {name} is {size[0]}x{size[1]} {mode}, not a 32x32 RGB image",
                "CIFAR-10 images are 32x32 RGB; convert or remove that file",
            )
        found[split].append((CLASSES.index(cls), PurePosixPath(name).name, pixels))
    splits = {}
    for split, items in found.items():
        present = {c for c, _, _ in items}
        missing = [CLASSES[c] for c in range(len(CLASSES)) if c not in present]
        if missing:
            raise GraderError(
                f"{where}: the {split} split has no images for class {', '.join(missing)}",
                f"add {split}/<class>/ folders with images for all ten classes",
            )
        items.sort(key=lambda item: (item[0], item[1]))
        images = np.stack([pixels for _, _, pixels in items]).astype(np.uint8)
        labels = np.array([c for c, _, _ in items], dtype=np.int64)
        splits[split] = (images, labels)
    return Converted(kind, False, splits)


def check_counts(splits: dict[str, tuple[np.ndarray, np.ndarray]], where: str, expect_full: bool) -> None:
    """Refuse splits with a class missing, or (``expect_full``) not the official counts.

    Raises:
        GraderError: naming ``where`` and the counts, with the hint to pass --partial.
    """
    for split, (images, labels) in splits.items():
        if images.shape[1:] != (32, 32, 3):
            raise GraderError(f"{where}: {split} images have shape {images.shape[1:]}, not 32x32x3")
        check_class_counts(split, np.bincount(labels, minlength=len(CLASSES)).tolist(), where, expect_full)


def check_class_counts(split: str, counts: list[int], where: str, expect_full: bool) -> None:
    """``check_counts`` for one split, from its images per class (as the cache's meta.json keeps them).

    Raises:
        GraderError: as ``check_counts``.
    """
    if len(counts) != len(CLASSES) or 0 in counts:
        raise GraderError(f"{where}: the {split} split has labels outside 0..9 or empty classes")
    if expect_full:
        want = FULL_COUNTS[split]
        if sum(counts) != want or any(n != want // len(CLASSES) for n in counts):
            per_class = ", ".join(f"{c}={n}" for c, n in zip(CLASSES, counts))
            raise GraderError(say("data.not_full", where=str(where), split=split, count=sum(counts),
                                  per_class=per_class, want=want, per=want // len(CLASSES)))
