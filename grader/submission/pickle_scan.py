"""What a pickle stream names, read with pickletools (which builds nothing), and which globals a
weights file may name.

A pickle runs code only through the globals it names (``os.system``, ``builtins.eval``, a
student's own class); its tensors live outside it, named by persistent ids. One scan yields
both, and serves the two readers of a submitted pickle: the form detector
(``grader.submission``), which tells a pickled module from a state_dict by the classes it names,
and the pre-check (``grader.submission.precheck``), which refuses forbidden globals and storages that
claim more bytes than their archive entries hold. Both judge globals by ``allowed_global``.
"""

from __future__ import annotations

import functools
import io
import pickletools
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from grader.messages import Message, say

_STRING_OPS = {"BINUNICODE", "SHORT_BINUNICODE", "UNICODE", "BINUNICODE8", "STRING",
               "BINSTRING", "SHORT_BINSTRING"}
_INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"}
_PUT_OPS = {"BINPUT", "LONG_BINPUT", "PUT"}
_PLAIN_OPS = {"PROTO", "FRAME", "STOP", "MARK", "APPEND", "APPENDS", "MEMOIZE"} | _PUT_OPS
SHORT_STRING = 64  # strings shorter than this are kept (markers such as "grader-checkpoint")

# TorchScript archives name their compiled classes under __torch__ and a type-tag helper; the
# TorchScript loader resolves those itself, never through a Python import.
TORCHSCRIPT_PREFIXES = ("__torch__.", "torch.jit._pickle.")
COMPUTED_GLOBAL = "<computed>.<computed>"  # STACK_GLOBAL of names the scan cannot know: never allowed


@dataclass(frozen=True)
class ScanLimits:
    """Caps on what one scan walks and keeps, so that its cost follows the pickle's length and
    never what the pickle's values would grow into.

    Attributes:
        opcodes: opcodes walked (the largest torchvision network pickled whole, efficientnet_b7,
            has 156,000; pickletools walks about a million a second).
        tuple_items: items of a tuple kept as a value; a longer one is kept as "something".
        tuple_depth: tuples inside tuples kept (a legacy storage record holds its view, depth 2).
        strings: distinct short strings kept.
        globals: distinct globals named.
        persistent_ids: persistent ids (one per tensor storage).
    """

    opcodes: int = 300_000
    tuple_items: int = 8
    tuple_depth: int = 2
    strings: int = 10_000
    globals: int = 10_000
    persistent_ids: int = 100_000


SCAN_LIMITS = ScanLimits()


@dataclass
class PickleScan:
    """What one pickle stream names.

    Attributes:
        globals: ``module.name`` of every distinct global, in stream order (Python 2's
            ``__builtin__`` read as ``builtins``; ``COMPUTED_GLOBAL`` for one whose name the
            stream computes).
        strings: the short strings it holds.
        persistent_ids: each persistent id as far as small flat values rebuild it, e.g.
            ``("storage", "torch.FloatStorage", "0", "cpu", 4096)``; None where it was not small
            and flat (a tuple over ``ScanLimits.tuple_items`` or ``tuple_depth``, a huge number).
        error: why the stream could not be read to its end (a catalogue message), or None. It
            names a position and a cause, never the stream's bytes.
        opcodes: how many opcodes were walked.
        tensors: each tensor view torch's rebuild function makes of a storage, as
            ``TensorView``s, in stream order (what the similarity fingerprints read).
    """

    globals: list[str] = field(default_factory=list)
    strings: set[str] = field(default_factory=set)
    persistent_ids: list[object] = field(default_factory=list)
    error: Message | None = None
    opcodes: int = 0
    tensors: list["TensorView"] = field(default_factory=list)


@dataclass(frozen=True)
class TensorView:
    """One tensor of a torch pickle: ``torch._utils._rebuild_tensor_v2(storage, offset, size,
    stride, ...)``, with its storage named by its index in ``PickleScan.persistent_ids``.

    Attributes:
        storage: index into ``persistent_ids`` of the storage record it views.
        offset: its first element's index in the storage.
        size: its shape.
        stride: elements between neighbours along each dimension.
    """

    storage: int
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2"


class _StorageRef(int):
    """What the scan's stack holds for a persistent id's result: the id's index."""


class _GlobalName(str):
    """What the scan's stack holds for a global: its name, told apart from a string literal."""


class _Stop(Exception):
    """The scan stops here; its one argument, a catalogue message, says why."""


class _Machine:
    """The pickle machine's stack and memo, holding only small flat values (strings, integers of
    at most 64 bits, small shallow tuples of them); None stands for anything else."""

    def __init__(self, limits: ScanLimits, scan: PickleScan):
        self.limits, self.scan = limits, scan
        self.stack: list[object] = []
        self.marks: list[int] = []  # the stack's length at each MARK, as the unpickler keeps them
        self.memo: dict[object, object] = {}
        self.seen: set[str] = set()

    def pop(self, n: int) -> list[object]:
        floor = self.marks[-1] if self.marks else 0
        if len(self.stack) - n < floor:
            raise _Stop(say("pickle.pops_too_much"))
        items = self.stack[len(self.stack) - n:] if n else []
        del self.stack[len(self.stack) - n:]
        return items

    def top(self) -> object:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise _Stop(say("pickle.empty_top"))
        return self.stack[-1]

    def pop_mark(self) -> list[object]:
        if not self.marks:
            raise _Stop(say("pickle.unopened_mark"))
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def name(self, module: object, attr: object) -> str:
        if not (isinstance(module, str) and isinstance(attr, str)):
            return self.add_global(COMPUTED_GLOBAL)
        return self.add_global(_qualified(module, attr))

    def add_global(self, name: str) -> str:
        if name not in self.seen:
            if len(self.seen) >= self.limits.globals:
                raise _Stop(say("pickle.too_many_globals", cap=self.limits.globals))
            self.seen.add(name)
            self.scan.globals.append(name)
        return name

    def persistent_id(self, pid: object) -> _StorageRef:
        if len(self.scan.persistent_ids) >= self.limits.persistent_ids:
            raise _Stop(say("pickle.too_many_ids", cap=self.limits.persistent_ids))
        self.scan.persistent_ids.append(pid)
        return _StorageRef(len(self.scan.persistent_ids) - 1)

    def tensor_view(self, args: object) -> None:
        """Record ``_rebuild_tensor_v2``'s arguments when they are a storage and a plain view."""
        if not (isinstance(args, tuple) and len(args) >= 4 and isinstance(args[0], _StorageRef)):
            return
        offset, size, stride = args[1:4]
        ints = (lambda t: isinstance(t, tuple) and all(type(v) is int and v >= 0 for v in t))
        if type(offset) is int and offset >= 0 and ints(size) and ints(stride) and len(size) == len(stride) \
                and len(self.scan.tensors) < self.limits.persistent_ids:
            self.scan.tensors.append(TensorView(int(args[0]), offset, size, stride))

    def tuple_of(self, items: list[object]) -> tuple | None:
        """``items`` as a tuple when small and shallow, else None (kept as "something")."""
        if len(items) > self.limits.tuple_items:
            return None
        value = tuple(items)
        return value if _depth(value, self.limits.tuple_depth + 1) <= self.limits.tuple_depth else None


def _depth(value: object, cap: int) -> int:
    """How deep tuples nest in ``value``, counted up to ``cap`` (the walk never goes deeper)."""
    if not isinstance(value, tuple) or cap <= 0:
        return 0
    return 1 + max((_depth(item, cap - 1) for item in value), default=0)


def _flat(arg: object) -> object:
    """A string or an integer of at most 64 bits as itself; anything else as None."""
    if isinstance(arg, str) or (isinstance(arg, int) and not isinstance(arg, bool) and arg.bit_length() <= 64):
        return arg
    return None


def scan_pickle(data: bytes | BinaryIO, limits: ScanLimits = SCAN_LIMITS) -> PickleScan:
    """Walk the opcodes of ``data`` on a model of the pickle machine's stack and memo, keeping
    just enough to name globals and persistent ids: short strings, integers, marks, small
    tuples. Never raises on garbage, and never builds or renders what a value would grow into:
    a tuple of shared references nested 40 deep is one "something", not 2**40 items.

    ``data`` is one pickle's bytes, or a binary stream read from its position to the pickle's
    STOP and left just past it (torch's legacy format writes several pickles one after another).
    ``limits`` caps the opcodes walked and what is kept; past a cap the scan stops with ``error``.

    The opcodes are read as ``pickletools.genops`` reads them (its argument readers, its opcode
    table), in a loop of this module's own that costs half as much per opcode: a pickle at the
    opcode cap is read in a fraction of a second.
    """
    scan = PickleScan()
    machine = _Machine(limits, scan)
    content, leave_at = _contents(data)
    reader = io.BytesIO(content)
    stack, pushes_none, steps, by_code, cap = machine.stack, _PUSHES_NONE, _STEPS, _BY_CODE, limits.opcodes
    size, pos, count = len(content), 0, 0
    try:
        while True:
            op = by_code[content[pos]] if pos < size else None
            if op is None:
                raise ValueError("an unknown opcode, or the end before STOP")
            count += 1
            if count > cap:
                raise _Stop(say("pickle.too_many_opcodes", cap=cap))
            if op.arg is None:
                arg, after = None, pos + 1
            else:
                reader.seek(pos + 1)
                arg = op.arg.reader(reader)
                after = reader.tell()
            if op.name in pushes_none:  # most opcodes of a long pickle: one step, no call
                stack.append(None)
            else:
                steps[op.name](machine, arg)
            pos = after
            if op.name == "STOP":
                break
    except _Stop as stop:
        scan.error = say("pickle.stopped", reason=stop.args[0], pos=pos)
    except Exception as exc:  # the argument readers raise ValueError and others on garbage
        scan.error = say("pickle.unreadable_past", pos=pos, kind=type(exc).__name__)
    scan.opcodes = min(count, cap)
    leave_at(pos)
    return scan


_BY_CODE: list[pickletools.OpcodeInfo | None] = [None] * 256
for _op in pickletools.opcodes:
    _BY_CODE[ord(_op.code)] = _op


def _contents(data: bytes | BinaryIO) -> tuple[bytes, Callable[[int], object]]:
    """(the bytes to walk, how to leave a stream at a position of those bytes: just past the
    pickle's STOP); a stream is read from its position to its end."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), lambda _pos: None
    start = data.tell()
    return data.read(), lambda pos: data.seek(start + pos)


def _value(m: _Machine, arg: object) -> None:
    value = _flat(arg)
    if isinstance(value, str) and len(value) < SHORT_STRING and len(m.scan.strings) < m.limits.strings:
        m.scan.strings.add(value)
    m.stack.append(value)


def _global(m: _Machine, arg: object) -> None:
    module, _, name = str(arg).partition(" ")
    m.stack.append(_GlobalName(m.name(module, name)))


def _inst(m: _Machine, arg: object) -> None:
    """Protocol 0's call of a class named inline: a global like any other."""
    module, _, name = str(arg).partition(" ")
    m.pop_mark()
    m.name(module, name)
    m.stack.append(None)


def _extension(m: _Machine, _arg: object) -> None:
    """A global named by its number in copyreg's registry: one the scan cannot know."""
    m.stack.append(m.add_global(COMPUTED_GLOBAL))


def _stack_global(m: _Machine, _arg: object) -> None:
    module, name = m.pop(2)
    m.stack.append(_GlobalName(m.name(module, name)))


def _mark(m: _Machine, _arg: object) -> None:
    m.marks.append(len(m.stack))


def _put(m: _Machine, arg: object) -> None:
    m.memo[arg] = m.top()


def _memoize(m: _Machine, _arg: object) -> None:
    m.memo[len(m.memo)] = m.top()


def _get(m: _Machine, arg: object) -> None:
    m.stack.append(m.memo.get(arg))


def _tuple(m: _Machine, _arg: object) -> None:
    m.stack.append(m.tuple_of(m.pop_mark()))


def _tuple_of(n: int):
    def step(m: _Machine, _arg: object) -> None:
        m.stack.append(m.tuple_of(m.pop(n)))
    return step


def _dup(m: _Machine, _arg: object) -> None:
    m.stack.append(m.top())


def _pop(m: _Machine, _arg: object) -> None:
    if len(m.stack) > (m.marks[-1] if m.marks else 0):
        m.stack.pop()
    elif m.marks:
        m.marks.pop()  # POP of a MARK, as the unpickler allows
    else:
        raise _Stop(say("pickle.pops_too_much"))


def _binpersid(m: _Machine, _arg: object) -> None:
    m.stack.append(m.persistent_id(m.pop(1)[0]))


def _persid(m: _Machine, arg: object) -> None:
    m.stack.append(m.persistent_id(_flat(arg)))


def _reduce(m: _Machine, _arg: object) -> None:
    """A call: kept as a tensor view when it is torch's rebuild of one; its result is unknown."""
    func, args = m.pop(2)
    if type(func) is _GlobalName and func == REBUILD_TENSOR:
        m.tensor_view(args)
    m.stack.append(None)


def _generic(op: pickletools.OpcodeInfo):
    """Any other opcode's effect, from pickletools' description of its stack before and after:
    what it pops (to a MARK, then more), and as many None pushed as it leaves."""
    before, pushed = op.stack_before, len(op.stack_after)
    to_mark = pickletools.markobject in before
    popped = before.index(pickletools.markobject) if to_mark else len(before)

    def step(m: _Machine, _arg: object) -> None:
        if to_mark:
            m.pop_mark()
        m.pop(popped)
        m.stack.extend([None] * pushed)
    return step


_SPECIAL = {
    **{name: _value for name in _STRING_OPS | _INT_OPS}, **{name: _put for name in _PUT_OPS},
    **{name: _get for name in ("GET", "BINGET", "LONG_BINGET")},
    **{name: _extension for name in ("EXT1", "EXT2", "EXT4")},
    "GLOBAL": _global, "INST": _inst, "STACK_GLOBAL": _stack_global, "MARK": _mark, "MEMOIZE": _memoize,
    "TUPLE": _tuple, "EMPTY_TUPLE": _tuple_of(0), "TUPLE1": _tuple_of(1), "TUPLE2": _tuple_of(2),
    "TUPLE3": _tuple_of(3), "DUP": _dup, "POP": _pop, "BINPERSID": _binpersid, "PERSID": _persid,
    "REDUCE": _reduce,
}
_STEPS = {op.name: _SPECIAL.get(op.name) or _generic(op) for op in pickletools.opcodes}
# Opcodes that only push a value the scan does not keep (None, True, floats, bytes, empty containers).
_PUSHES_NONE = frozenset(op.name for op in pickletools.opcodes
                         if op.name not in _SPECIAL and not op.stack_before and len(op.stack_after) == 1)


def read_plain_pickle(stream: BinaryIO, limits: ScanLimits = SCAN_LIMITS) -> int | str | list | None:
    """The value of a pickle holding one integer, one string or a flat list of them (the
    bookkeeping pickles of torch's legacy format), read from ``stream``'s position to its STOP.

    None for anything else, garbage and anything over ``limits.opcodes`` included; nothing but
    those values is built.
    """
    items: list = []
    is_list = False
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(stream)):
            if count >= limits.opcodes:
                return None
            if op.name in _STRING_OPS or op.name in _INT_OPS:
                items.append(arg)
            elif op.name == "EMPTY_LIST" and not is_list and not items:
                is_list = True
            elif op.name not in _PLAIN_OPS:
                return None
    except Exception:  # pickletools raises ValueError, IndexError and others on garbage
        return None
    if is_list:
        return items
    return items[0] if len(items) == 1 else None


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters for a message (a global's name may be megabytes long)."""
    return text if len(text) <= limit else text[:limit] + "..."


def describe(value: object, limit: int = 40) -> str:
    """A short description of a value a pickle holds, for a message: a string or number
    shortened to ``limit`` characters, a tuple by its length (in words, a catalogue message);
    never the whole value."""
    if isinstance(value, str):
        return repr(shorten(value, limit))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if value.bit_length() <= 64 else say("value.long_number", bits=value.bit_length())
    if isinstance(value, tuple):
        return say("value.tuple", count=len(value))
    return say("value.not_plain")


def _qualified(module: str, name: str) -> str:
    return f"{'builtins' if module == '__builtin__' else module}.{name}"


def allowed_global(name: str, *, torchscript: bool = False, own: frozenset[str] = frozenset()) -> bool:
    """True for a global a weights file may name.

    That is what ``torch.load(weights_only=True)`` rebuilds, the stock ``torch.nn`` layer
    classes (a homework-style ``torch.save(net)``), torchvision's model classes, torch's legacy
    typed storages, inside a TorchScript archive its own compiled names, and ``own``: the
    classes the student's code defines (``grader.submission.model_code``), which the child
    checks again before binding them. Everything else (os, subprocess, builtins.eval, a class
    nobody handed in) is refused.
    """
    if name in stock_module_names() or name in weights_only_globals() or name in own:
        return True
    if is_torchvision_model(name):
        return True
    module, _, attr = name.rpartition(".")
    if module == "torch" and attr.endswith("Storage"):
        return True
    return torchscript and name.startswith(TORCHSCRIPT_PREFIXES)


def is_torchvision_model(name: str) -> bool:
    """``torchvision.models.<module>.<Class>``: a model class of the pinned torchvision (the child
    imports it from there and refuses anything that is not an nn.Module subclass)."""
    module, _, attr = name.rpartition(".")
    return module.startswith("torchvision.models.") and attr[:1].isupper() and attr.isidentifier() \
        and all(part.isidentifier() for part in module.split("."))


@functools.cache
def stock_module_names() -> frozenset[str]:
    """``module.Class`` of every stock torch.nn layer the child may rebuild."""
    shipped = _shipped_lists()
    return shipped.STOCK_MODULES if shipped else torch_stock_module_names()


@functools.cache
def weights_only_globals() -> frozenset[str]:
    """The globals torch's weights-only unpickler rebuilds."""
    shipped = _shipped_lists()
    return shipped.WEIGHTS_ONLY_GLOBALS if shipped else torch_weights_only_globals()


@functools.cache
def _shipped_lists():
    """``grader.submission.allowlists`` when it was written from the installed torch, else None.

    The two lists come from torch itself, and importing torch costs a grading process over a
    second; the package ships them as written from the torch it pins (``scripts/allowlists.py``;
    a test keeps them equal to torch's own), and any other torch has them computed.
    """
    from importlib import metadata

    from grader.submission import allowlists

    try:
        installed = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
    return allowlists if installed == allowlists.TORCH_VERSION else None


def torch_stock_module_names() -> frozenset[str]:
    """``stock_module_names`` as the installed torch defines them (imports torch)."""
    from grader.stock_layers import stock_module_classes

    return frozenset(f"{cls.__module__}.{cls.__qualname__}" for cls in stock_module_classes())


def torch_weights_only_globals() -> frozenset[str]:
    """``weights_only_globals`` as the installed torch defines them (imports torch)."""
    try:
        from torch._weights_only_unpickler import _get_allowed_globals
    except ImportError:  # a torch without it: the child's weights-only load still refuses the rest
        return frozenset({"collections.OrderedDict", "builtins.set", "torch._utils._rebuild_tensor_v2",
                          "torch._utils._rebuild_parameter"})
    return frozenset(_get_allowed_globals())
