"""Cheap checks on a submitted file before any child starts: pure reads, nothing unpickled.

A torch.save archive is a zip whose entries are all *stored* (torch never compresses them), with
one pickle (``<prefix>/data.pkl``) whose persistent ids name storages ``<prefix>/data/<key>`` and
their element counts. Refusing compressed entries defeats zip bombs; comparing each storage's
claimed size with its entry defeats "this tensor holds a terabyte"; scanning the pickle's opcodes
(``grader.submission.pickle_scan``: pickletools, which builds nothing) names a forbidden global such
as ``os.system`` up front, before ``torch.load(weights_only=True)`` in the sandboxed child refuses
it again.

torch's legacy format (every torch before 1.6, and ``_use_new_zipfile_serialization=False``) is
no zip but pickles one after another, then the storages' bytes; it gets the same scan and the
same storage checks, each storage measured where it lies in the file (``check_legacy``).
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.limits import GiB, MiB, format_bytes
from grader.messages import Message, say
from grader.submission.archive import zip_entry_count
from grader.submission.pickle_scan import (PickleScan, ScanLimits, allowed_global, describe, read_plain_pickle,
                                           scan_pickle, shorten)

PICKLE_SUFFIXES = (".pkl",)
# The pickles the loaders read, by name inside the archive's one folder: torch.load reads data.pkl;
# torch.jit.load also constants.pkl (and the mobile runtime bytecode.pkl; traced_inputs.pkl is
# torch.jit.save's record of the example inputs). Any other .pkl entry is read by nobody.
TORCH_PICKLES = ("data.pkl",)
TORCHSCRIPT_PICKLES = ("data.pkl", "constants.pkl", "traced_inputs.pkl", "bytecode.pkl")
# Bytes per element of the storage classes torch.save names (torch.<Name>Storage).
ELEMENT_BYTES = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
    "BoolStorage": 1, "ComplexDoubleStorage": 16, "ComplexFloatStorage": 8, "QInt8Storage": 1,
    "QUInt8Storage": 1, "QInt32Storage": 4, "UntypedStorage": 1, "Float8_e4m3fnStorage": 1,
    "Float8_e5m2Storage": 1, "UInt16Storage": 2, "UInt32Storage": 4, "UInt64Storage": 8,
}
# torch's legacy format: the first pickle holds this number, the second this format version.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
LEGACY_PICKLE = say("precheck.its_pickle")  # FileCheck.pickles' key for a legacy file's main pickle
COUNT_BYTES = 8  # each legacy storage's bytes follow its element count, a little-endian int64
_LOCAL_HEADER = 30  # bytes of a zip entry's local header before its name
BARE_PICKLE = say("precheck.bare_pickle")


@dataclass(frozen=True)
class PrecheckLimits:
    """Caps on a submitted file, in bytes: the one home of the caps that the pre-check and the
    form detector (``grader.submission``) both apply."""

    file_bytes: int = 1 * GiB           # any one submitted file (the homework net is ~6 MB)
    pickle_bytes: int = 16 * MiB        # one pickle inside an archive (efficientnet_b7 pickled whole: 0.4 MiB)
    pickles_bytes: int = 32 * MiB       # all the pickles of one file together
    pickle_opcodes: int = 300_000       # opcodes of all the pickles of one file (efficientnet_b7: 156,000)
    storage_bytes: int = 2 * GiB        # all tensor storages together
    entries: int = 10_000               # zip members (a state_dict of 1,000 tensors has 1,004)
    source_bytes: int = 4 * MiB         # one deflated TorchScript code/ entry, inflated
    source_ratio: int = 20              # its inflated/deflated ratio (source text: about 2-4)


LIMITS = PrecheckLimits()


@dataclass(frozen=True)
class FileCheck:
    """What the pre-check found in one submitted file.

    Attributes:
        problems: every problem, in words; empty when the file may be handed to the child.
        pickles: archive entry name -> the scan of that pickle, for the archive's main pickle
            (``data.pkl``, see ``is_data_pickle``; ``LEGACY_PICKLE`` for a file in torch's legacy
            format) when it was read, so that the form detector
            reuses the scan instead of reading it again. The other pickles' scans are dropped
            as soon as they are checked: an archive may hold many, each up to ``pickle_bytes``.
    """

    problems: list[str]
    pickles: dict[str, PickleScan] = field(default_factory=dict)


def precheck_file(path: Path, limits: PrecheckLimits = LIMITS) -> None:
    """Refuse a submitted file that is unsafe to hand even to the sandboxed child.

    Zip archives (torch.save, TorchScript) get the archive checks, torch's legacy format the
    same checks on its pickles and storages; any other pickle is refused; other files (safetensors, ONNX, model.py) get the size cap.

    Raises:
        GraderError: naming the file and every problem found.
    """
    problems = inspect_file(Path(path), limits)
    if problems:
        raise refusal(path, problems)


def refusal(path: Path, problems: list[str]) -> GraderError:
    """The error that refuses ``path`` for ``problems`` (from ``inspect_file`` and friends)."""
    return GraderError(say("precheck.refused", file=str(path), problems=tuple(problems)))


def inspect_file(path: Path, limits: PrecheckLimits = LIMITS) -> list[str]:
    """Every problem with ``path``, in words; empty when it may be loaded.

    Raises:
        GraderError: the file cannot be read at all.
    """
    return check_file(path, limits).problems


def check_file(path: Path, limits: PrecheckLimits = LIMITS, *, own: frozenset[str] = frozenset()) -> FileCheck:
    """The problems with ``path`` and the scans of the pickles read to find them.

    ``own``: the globals the student's own code defines (``allowed_global``), allowed besides the
    stock ones.

    Raises:
        GraderError: the file cannot be read at all.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise GraderError(say("precheck.unreadable", file=str(path), reason=str(exc.strerror))) from exc
    if size > limits.file_bytes:
        return FileCheck([say("precheck.over_cap", size=format_bytes(size), cap=format_bytes(limits.file_bytes))])
    if head.startswith(b"PK"):
        return check_archive(path, size, limits, own=own)
    if head[:1] == b"\x80":
        return check_legacy(path, size, limits)
    if head[:1] in (b"(", b"]", b"}"):
        return FileCheck([BARE_PICKLE])
    return FileCheck([])


def check_archive(path: Path, size: int, limits: PrecheckLimits, *, own: frozenset[str] = frozenset()) -> FileCheck:
    """Problems with a torch zip archive (entries stored, sizes honest, pickles tame).

    Only the pickles the loader reads are scanned (``read_pickles``), within ``limits``' caps on
    their bytes and opcodes for the whole file; any other ``.pkl`` entry is refused unread.
    """
    count = zip_entry_count(path, limits.entries)
    if count > limits.entries:
        return FileCheck([say("precheck.too_many_entries", cap=limits.entries)])
    scans: dict[str, PickleScan] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            problems = entry_problems(archive, size, limits)
            if problems:
                return FileCheck(problems)  # do not read (inflate) anything from a suspicious archive
            infos = archive.infolist()
            sizes = {info.filename: info.file_size for info in infos}
            torchscript = any("/code/" in f"/{info.filename}" for info in infos)
            read, problems = read_pickles(infos, torchscript=torchscript)
            budget = ScanLimits(opcodes=limits.pickle_opcodes)
            unread = limits.pickles_bytes
            for info in read:
                if info.file_size > limits.pickle_bytes:
                    problems.append(say("precheck.pickle_over", name=info.filename, size=format_bytes(info.file_size),
                                        cap=format_bytes(limits.pickle_bytes)))
                    continue
                if info.file_size > unread:
                    problems.append(say("precheck.pickles_over", cap=format_bytes(limits.pickles_bytes)))
                    break
                unread -= info.file_size
                scan = scan_pickle(archive.read(info), budget)
                budget = dataclasses.replace(budget, opcodes=max(budget.opcodes - scan.opcodes, 0))
                problems += pickle_problems(scan, info.filename, sizes, limits,
                                            torchscript=torchscript, own=own)
                if is_data_pickle(info.filename):
                    scans[info.filename] = scan
            return FileCheck(problems[:5], scans)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:  # OSError: a seek before the file's start
        return FileCheck([say("precheck.unreadable_zip", reason=type(exc).__name__)], scans)


def read_pickles(infos: list[zipfile.ZipInfo], *, torchscript: bool) -> tuple[list[zipfile.ZipInfo], list[str]]:
    """The pickle entries the loader reads (``TORCH_PICKLES``, or ``TORCHSCRIPT_PICKLES`` in a
    TorchScript archive, directly inside the archive's folder), and the problems of the rest: a
    ``.pkl`` entry nobody reads, or a second archive folder with its own data.pkl."""
    names = TORCHSCRIPT_PICKLES if torchscript else TORCH_PICKLES
    data = [i.filename for i in infos if is_data_pickle(i.filename)]
    prefix = data[0][:-len("data.pkl")] if data else None
    read = [i for i in infos if prefix is not None and i.filename.startswith(prefix)
            and i.filename[len(prefix):] in names]
    problems = [say("precheck.several_data", count=len(data))] if len(data) > 1 else []
    stray = [i.filename for i in infos if i.filename.endswith(PICKLE_SUFFIXES) and i not in read]
    if stray:
        names = (describe(stray[0], 80), "...") if len(stray) > 1 else (describe(stray[0], 80),)
        problems.append(say("precheck.stray_pickles", count=len(stray), names=names))
    return read, problems


def is_data_pickle(name: str) -> bool:
    """Whether a zip entry is a torch archive's main pickle (``<folder>/data.pkl``)."""
    return name == "data.pkl" or name.endswith("/data.pkl")


def entry_problems(archive: zipfile.ZipFile, size: int,
                   limits: PrecheckLimits = LIMITS) -> list[str]:
    """Problems with an archive's directory alone (entry count, compression, overlap), read
    before anything in it is inflated: whoever reads a member of a submitted archive calls this
    first. ``size`` is the archive's size in bytes."""
    infos = archive.infolist()
    if len(infos) > limits.entries:
        return [say("precheck.zip_entries_over", count=len(infos), cap=limits.entries)]
    return _entry_problems(infos, size, limits)


def _entry_problems(infos: list[zipfile.ZipInfo], size: int,
                    limits: PrecheckLimits) -> list[str]:
    problems = [say("precheck.compressed", name=i.filename, packed=i.compress_size, size=i.file_size) for i in infos
                if (i.compress_type != zipfile.ZIP_STORED or i.compress_size != i.file_size)
                and not _tame_torchscript_source(i, limits)]
    outside = [i.filename for i in infos if not 0 <= i.header_offset <= size - _LOCAL_HEADER]
    if outside:  # zipfile would seek there (before the file's start: an OSError)
        problems.append(say("precheck.outside", name=outside[0]))
    stored = sum(i.compress_size for i in infos)
    if stored > size:  # entries cannot outweigh the archive unless they overlap
        problems.append(say("precheck.overlap", declared=format_bytes(stored), size=format_bytes(size)))
    exported = any(i.filename.endswith("/archive_format") for i in infos)  # torch.export.save
    if not exported and not any(i.filename.endswith(PICKLE_SUFFIXES) for i in infos):
        problems.append(say("precheck.no_data_pkl"))
    return problems[:5]


def _tame_torchscript_source(info: zipfile.ZipInfo, limits: PrecheckLimits) -> bool:
    """torch.jit.save deflates its code/ entries: allowed when small and plainly compressed."""
    return ("/code/" in f"/{info.filename}" and info.compress_type == zipfile.ZIP_DEFLATED
            and info.file_size <= limits.source_bytes
            and info.file_size <= limits.source_ratio * max(info.compress_size, 1))


def pickle_problems(scan: PickleScan, name: str, sizes: dict[str, int], limits: PrecheckLimits,
                    *, torchscript: bool = False, own: frozenset[str] = frozenset()) -> list[str]:
    """Problems in one pickle's opcodes: forbidden globals, storages that lie about their size.

    Args:
        scan: the pickle's opcode scan (``scan_pickle``: pickletools, nothing is built).
        name: its archive name, e.g. ``model/data.pkl``; storages live in ``model/data/<key>``.
        sizes: archive entry name -> uncompressed size.
        torchscript: the archive is TorchScript, whose pickles also name its compiled classes.
        own: the globals the student's own code defines.
    """
    foreign = [g for g in scan.globals if not allowed_global(g, torchscript=torchscript, own=own)]
    problems = [say("precheck.foreign_global", what=name, name=shorten(g)) for g in foreign[:5]]
    if scan.error:
        problems.append(say("precheck.bad_pickle", name=name, reason=scan.error))
    if name.endswith("traced_inputs.pkl"):
        return problems[:5]  # torch.jit.save records the example inputs' storages empty
    prefix = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    storage_dir = prefix + ("constants/" if name.endswith("constants.pkl") else "data/")
    total = 0
    for pid in scan.persistent_ids:
        message, nbytes = _storage_problem(pid, storage_dir, sizes)
        problems += [say("precheck.in_pickle", name=name, problem=message)] if message and len(problems) < 5 else []
        total += nbytes
    if total > limits.storage_bytes:
        problems.append(_tensors_over(total, limits))
    return problems[:5]


def _tensors_over(total: int, limits: PrecheckLimits) -> Message:
    return say("precheck.tensors_over", size=format_bytes(total), cap=format_bytes(limits.storage_bytes))


def _storage_problem(pid, storage_dir: str, sizes: dict[str, int]) -> tuple[Message | None, int]:
    """Check one persistent id ('storage', 'torch FloatStorage', key, location, numel)."""
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
        return say("precheck.unexpected_id", value=describe(pid)), 0
    _, storage_type, key, _, numel = pid
    if not isinstance(key, str):
        return say("precheck.storage_not_key", value=describe(key)), 0
    element = ELEMENT_BYTES.get(storage_type.rsplit(" ", 1)[-1].rsplit(".", 1)[-1]) \
        if isinstance(storage_type, str) else None
    if element is None or not isinstance(numel, int) or numel < 0:
        return say("precheck.storage_unknown", key=shorten(key), kind=describe(storage_type), count=describe(numel)), 0
    claimed = numel * element
    held = sizes.get(f"{storage_dir}{key}")
    if held is None:
        return say("precheck.storage_no_entry", key=shorten(key), entry=f"{storage_dir}{shorten(key)}"), 0
    if claimed > held:
        return say("precheck.storage_claims", key=shorten(key), claimed=format_bytes(claimed),
                   held=format_bytes(held)), 0
    return None, claimed


def check_legacy(path: Path, size: int, limits: PrecheckLimits = LIMITS) -> FileCheck:
    """Problems with a file in torch's legacy format: each pickle scanned, each storage measured.

    The layout (``_legacy_save`` in torch/serialization.py): a pickle of ``LEGACY_MAGIC``, one of
    ``LEGACY_PROTOCOL``, one of the saving system's facts, the main pickle (whose persistent ids
    name storages), a pickle of the storages' keys, then each storage in that order: its element
    count (``COUNT_BYTES``) and its bytes. A pickle that does not start so is a bare pickle.
    """
    with path.open("rb") as f:
        head = io.BytesIO(f.read(limits.pickle_bytes))  # the five pickles; storages may lie beyond
    if read_plain_pickle(head) != LEGACY_MAGIC:
        return FileCheck([BARE_PICKLE])
    if read_plain_pickle(head) != LEGACY_PROTOCOL:
        return FileCheck([say("precheck.legacy_no_version")])
    problems: list[str] = []
    budget = ScanLimits(opcodes=limits.pickle_opcodes)
    for what in (say("precheck.its_facts"), LEGACY_PICKLE):
        scan = scan_pickle(head, budget)
        budget = dataclasses.replace(budget, opcodes=max(budget.opcodes - scan.opcodes, 0))
        if scan.error:
            return FileCheck([_cut_short(what, scan.error, size, limits)])
        problems += _global_problems(scan, what)
    records, record_problems = _legacy_storages(scan)
    problems += record_problems
    keys = read_plain_pickle(head)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return FileCheck(problems + [_cut_short(say("precheck.its_storages"), say("precheck.not_key_list"), size,
                                                limits)],
                         {LEGACY_PICKLE: scan})
    problems += _legacy_storage_problems(path, head.tell(), size, keys, records, limits)
    return FileCheck(problems[:5], {LEGACY_PICKLE: scan})


def _cut_short(what: str, error: str, size: int, limits: PrecheckLimits) -> str:
    """Why one of a legacy file's pickles could not be read: over the cap, or truncated."""
    if size > limits.pickle_bytes:
        return say("precheck.cut_short_large", what=what, limit=format_bytes(limits.pickle_bytes), reason=error)
    return say("precheck.cut_short", what=what, reason=error)


def _global_problems(scan: PickleScan, what: str) -> list[str]:
    foreign = [g for g in scan.globals if not allowed_global(g)]
    return [say("precheck.foreign_global", what=what, name=shorten(g)) for g in foreign[:5]]


def _legacy_storages(scan: PickleScan) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Key -> (elements, bytes per element) of each storage the main pickle's persistent ids name, and their problems.

    A legacy record is ``("storage", type, key, location, numel, view)``, where ``view`` is None
    or ``(view key, offset, numel)`` inside the storage; ``("module", class, file, source)``
    records a whole network, which the weights-only loader cannot read.
    """
    records: dict[str, tuple[int, int]] = {}
    problems = []
    for pid in scan.persistent_ids:
        if isinstance(pid, tuple) and pid[:1] == ("module",):
            problems.append(say("precheck.legacy_module"))
            continue
        if len(problems) >= 5:
            break
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            problems.append(say("precheck.unexpected_id_in", what=LEGACY_PICKLE, value=describe(pid)))
            continue
        _, storage_type, key, _, numel, view = pid
        element = ELEMENT_BYTES.get(storage_type.rsplit(".", 1)[-1]) if isinstance(storage_type, str) else None
        if element is None or not isinstance(numel, int) or numel < 0 or not isinstance(key, str):
            problems.append(say("precheck.storage_unknown", key=describe(key), kind=describe(storage_type),
                                count=describe(numel)))
        elif records.setdefault(key, (numel, element)) != (numel, element):
            problems.append(say("precheck.storage_two_sizes", key=shorten(key)))
        elif view is not None and not _fits(view, numel):
            problems.append(say("precheck.storage_view_outside", key=shorten(key)))
    return records, list(dict.fromkeys(problems))


def _fits(view: object, numel: int) -> bool:
    """Whether a legacy storage view ``(key, offset, numel)`` lies inside a storage of ``numel``."""
    return (isinstance(view, tuple) and len(view) == 3 and isinstance(view[1], int)
            and isinstance(view[2], int) and 0 <= view[1] and 0 <= view[2] and view[1] + view[2] <= numel)


def _legacy_storage_problems(path: Path, offset: int, size: int, keys: list[str],
                             records: dict[str, tuple[int, int]], limits: PrecheckLimits) -> list[str]:
    """Walk the storages from ``offset``, just past the pickles: each key named by a record, each
    count equal to the record's, each storage's bytes in the file, all of them under the cap."""
    listed = set(keys)
    stray = [k for k in keys if k not in records] + [k for k in records if k not in listed]
    if stray or len(listed) != len(keys):
        return [say("precheck.storages_mismatch", key=shorten((stray or keys)[0]))]
    if len(keys) > limits.entries:
        return [say("precheck.storages_over", count=len(keys), cap=limits.entries)]
    total = sum(numel * element for numel, element in records.values())
    if total > limits.storage_bytes:
        return [_tensors_over(total, limits)]
    with path.open("rb") as f:
        for key in keys:
            numel, element = records[key]
            if offset + COUNT_BYTES + numel * element > size:
                return [say("precheck.truncated_storage", key=shorten(key), claimed=format_bytes(numel * element),
                            held=format_bytes(max(0, size - offset - COUNT_BYTES)))]
            f.seek(offset)
            count = int.from_bytes(f.read(COUNT_BYTES), "little")
            if count != numel:
                return [say("precheck.storage_count", key=shorten(key), count=count, numel=numel)]
            offset += COUNT_BYTES + numel * element
    return []
