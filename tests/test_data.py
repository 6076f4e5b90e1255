"""The CIFAR-10 data layer: every source format, the cache, identity, and bad input."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from grader.data import CLASSES, fingerprint, load_cifar10
from grader.data.cache import cache_dir_for, convert, source_key
from grader.data.sources import detect_kind
from grader.errors import GraderError
from tests.conftest import make_image_tree


def make_official_folder(root: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """Write a tiny cifar-10-batches-py/ in the official pickle layout (rows of 3072 uint8, CHW)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [i % 10 for i in range(per_batch)]
        batch = {b"batch_label": name.encode(), b"labels": labels,
                 b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"filenames": [f"{i}.png".encode() for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def tar_gz(folder: Path, out: Path, arcname: str) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return out


def test_image_tree_loads_in_class_order(image_tree):
    ds = load_cifar10(image_tree, expect_full=False)
    assert ds.source_kind == "image-tree"
    assert ds.train_images.shape == (30, 32, 32, 3) and ds.train_images.dtype == np.uint8
    assert ds.test_images.shape == (20, 32, 32, 3)
    assert ds.test_labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert ds.classes == CLASSES and not ds.official


def test_image_tree_pixels_survive_png_round_trip(tmp_path):
    from PIL import Image

    tree = make_image_tree(tmp_path / "t", {"train": 1, "test": 1})
    expected = np.asarray(Image.open(tree / "test" / "cat" / "0000.png"))
    ds = load_cifar10(tree, expect_full=False)
    np.testing.assert_array_equal(ds.test_images[CLASSES.index("cat")], expected)


def test_tree_archive_matches_tree(tmp_path):
    tree = make_image_tree(tmp_path / "tree", seed=3)
    archive = tar_gz(tree, tmp_path / "tree.tar.gz", arcname="cifar10")
    a = load_cifar10(tree, expect_full=False)
    b = load_cifar10(archive, expect_full=False)
    assert b.source_kind == "image-tree-archive"
    np.testing.assert_array_equal(a.test_images, b.test_images)
    np.testing.assert_array_equal(a.train_labels, b.train_labels)
    assert a.fingerprint == b.fingerprint


def test_official_folder_and_archive(tmp_path):
    folder = make_official_folder(tmp_path / "src")
    ds = load_cifar10(folder, expect_full=False)
    assert ds.source_kind == "official-folder"
    assert ds.train_images.shape == (100, 32, 32, 3) and ds.test_images.shape == (20, 32, 32, 3)
    assert not ds.official  # our generated batches do not match the published checksums
    raw = pickle.loads((folder / "test_batch").read_bytes(), encoding="bytes")
    first = raw[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)  # CHW -> HWC
    np.testing.assert_array_equal(ds.test_images[0], first)
    archive = tar_gz(folder, tmp_path / "cifar-10-python.tar.gz", arcname="cifar-10-batches-py")
    from_archive = load_cifar10(archive, expect_full=False)
    assert from_archive.source_kind == "official-archive"
    assert from_archive.fingerprint == ds.fingerprint


def test_official_checksums_come_from_torchvision():
    from grader.data.sources import _official_md5s

    md5s = _official_md5s()
    assert set(md5s) == {f"data_batch_{i}" for i in range(1, 6)} | {"test_batch"}
    assert all(len(v) == 32 for v in md5s.values())


def test_batch_pickle_with_foreign_global_is_refused(tmp_path):
    folder = make_official_folder(tmp_path / "src")

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Payload()}, protocol=2))
    with pytest.raises(GraderError, match="test_batch is corrupt.*refused global"):
        load_cifar10(folder, expect_full=False)


def test_fingerprint_is_order_independent_and_label_sensitive():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(8) % 10
    order = rng.permutation(8)
    assert fingerprint(images, labels) == fingerprint(images[order], labels[order])
    changed = labels.copy()
    changed[0] = (changed[0] + 1) % 10
    assert fingerprint(images, labels) != fingerprint(images, changed)


def test_cache_is_reused_and_keyed_by_content(image_tree, tmp_path):
    folder = convert(image_tree, expect_full=False)
    stamp = (folder / "test_images.npy").stat().st_mtime_ns
    assert convert(image_tree, expect_full=False) == folder
    assert (folder / "test_images.npy").stat().st_mtime_ns == stamp
    other = make_image_tree(tmp_path / "other", seed=9)
    assert source_key(other) != source_key(image_tree)


def test_interrupted_conversion_leaves_no_cache(image_tree, monkeypatch):
    import grader.data.cache as cache

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.np, "save", explode)
    with pytest.raises(KeyboardInterrupt):
        convert(image_tree, expect_full=False)
    folder = cache_dir_for(source_key(image_tree))
    assert not folder.exists()
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".tmp")]


# --- bad input -----------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(GraderError, match="not found") as err:
        load_cifar10(tmp_path / "nope")
    assert "GRADER_DATA" in err.value.hint


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08 this is not really gzip")
    with pytest.raises(GraderError, match="cifar-10-python.tar.gz"):
        load_cifar10(bad)


def test_truncated_archive(tmp_path):
    tree = make_image_tree(tmp_path / "tree")
    archive = tar_gz(tree, tmp_path / "t.tar.gz", arcname="x")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(GraderError, match="t.tar.gz"):
        load_cifar10(archive, expect_full=False)


def test_tree_missing_class(image_tree):
    import shutil

    shutil.rmtree(image_tree / "test" / "frog")
    with pytest.raises(GraderError, match="test split has no images for class frog"):
        load_cifar10(image_tree, expect_full=False)


def test_image_not_32x32_rgb(image_tree):
    from PIL import Image

    Image.new("RGB", (64, 64)).save(image_tree / "train" / "dog" / "big.png")
    with pytest.raises(GraderError, match=r"train/dog/big.png is 64x64 RGB, not a 32x32 RGB"):
        load_cifar10(image_tree, expect_full=False)


def test_grey_image_is_refused(image_tree):
    from PIL import Image

    Image.new("L", (32, 32)).save(image_tree / "test" / "cat" / "grey.png")
    with pytest.raises(GraderError, match=r"grey.png is 32x32 L"):
        load_cifar10(image_tree, expect_full=False)


def test_unreadable_image(image_tree):
    (image_tree / "test" / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(GraderError, match="broken.png is not a readable image"):
        load_cifar10(image_tree, expect_full=False)


def test_wrong_count_is_refused_unless_partial(image_tree):
    with pytest.raises(GraderError, match=r"train split has 30 images.*CIFAR-10 has 50000") as err:
        load_cifar10(image_tree)
    assert "--partial" in err.value.hint


def test_folder_that_is_no_source(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GraderError, match="neither a cifar-10-batches-py folder nor an image tree"):
        detect_kind(tmp_path / "empty")


def test_unknown_class_folder(image_tree):
    make_image_tree(image_tree / "extra", {"train": 1})  # harmless: not under train/ or test/
    (image_tree / "train" / "unicorn").mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32)).save(image_tree / "train" / "unicorn" / "0.png")
    with pytest.raises(GraderError, match="unknown class folder 'unicorn'"):
        load_cifar10(image_tree, expect_full=False)


def test_download_failure_says_what_to_do(monkeypatch, tmp_path):
    import grader.data.locate as locate

    monkeypatch.delenv("GRADER_DATA", raising=False)
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "c"))

    class Offline:
        def __init__(self, *a, **k):
            raise OSError("network unreachable")

    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Offline)
    with pytest.raises(GraderError, match="could not download CIFAR-10") as err:
        locate.load_cifar10()
    assert "GRADER_DATA" in err.value.hint


def test_source_order_data_flag_then_env(monkeypatch, tmp_path):
    from grader.data import resolve_source

    monkeypatch.setenv("GRADER_DATA", str(tmp_path / "env"))
    assert resolve_source(tmp_path / "flag") == (tmp_path / "flag", "--data")
    assert resolve_source(None) == (tmp_path / "env", "$GRADER_DATA")
    monkeypatch.delenv("GRADER_DATA")
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "c"))
    assert resolve_source(None) == (None, "download")


@pytest.mark.shared_data
def test_shared_copy_has_full_cifar10(shared_copy):
    ds = load_cifar10(shared_copy)
    assert len(ds.train_labels) == 50_000 and len(ds.test_labels) == 10_000
    assert np.bincount(ds.train_labels).tolist() == [5000] * 10
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10
    assert ds.source_kind == "image-tree-archive" and not ds.official
    assert ds.fingerprint == fingerprint(ds.test_images, ds.test_labels)


def test_atomic_write_has_normal_permissions_and_no_leftovers(tmp_path):
    from grader.atomic import write_json

    path = write_json(tmp_path / "out" / "r.json", {"a": "中文"})
    assert path.read_text(encoding="utf-8") == '{\n  "a": "中文"\n}\n'
    assert path.stat().st_mode & 0o044  # group/others can read, as with open()
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_staged_dir_becomes_a_folder_with_normal_permissions(tmp_path):
    from grader.atomic import staged_dir

    with staged_dir(tmp_path / "run") as tmp:
        (tmp / "a.txt").write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "run" / "a.txt").read_text() == "x"
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_partial_source_stays_refused_without_partial_once_cached(image_tree):
    load_cifar10(image_tree, expect_full=False)  # converted and cached as a subset
    with pytest.raises(GraderError, match=r"train split has 30 images") as err:
        load_cifar10(image_tree)
    assert "--partial" in err.value.hint


def test_an_unwritable_cache_says_to_set_grader_cache(image_tree, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "file"))
    with pytest.raises(GraderError, match="data cache") as err:
        load_cifar10(image_tree, expect_full=False)
    assert "GRADER_CACHE" in err.value.hint


def test_a_cache_in_another_format_is_refused_with_the_fix(image_tree):
    import json

    from grader.data.cache import convert, load_cached

    folder = convert(image_tree, expect_full=False)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps(dict(meta, cache_format=99)))
    with pytest.raises(GraderError, match="in format 99") as raised:
        load_cached(folder)
    assert "delete that folder" in str(raised.value)
