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
import pickletools
from dataclasses import dataclass, field
from typing import BinaryIO

_STRING_OPS = {"BINUNICODE", "SHORT_BINUNICODE", "UNICODE", "BINUNICODE8", "STRING",
               "BINSTRING", "SHORT_BINSTRING"}
_INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"}
_PUT_OPS = {"BINPUT", "LONG_BINPUT", "PUT"}
_GET_OPS = {"BINGET", "LONG_BINGET", "GET"}
_TUPLE_OPS = {"TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_TUPLE"}
_PLAIN_OPS = {"PROTO", "FRAME", "STOP", "MARK", "APPEND", "APPENDS", "MEMOIZE"} | _PUT_OPS
SHORT_STRING = 64  # strings shorter than this are kept (markers such as "grader-checkpoint")

# TorchScript archives name their compiled classes under __torch__ and a type-tag helper; the
# TorchScript loader resolves those itself, never through a Python import.
TORCHSCRIPT_PREFIXES = ("__torch__.", "torch.jit._pickle.")


@dataclass
class PickleScan:
    """What one pickle stream names.

    Attributes:
        globals: ``module.name`` of every global, in stream order (Python 2's ``__builtin__``
            read as ``builtins``).
        strings: the short strings it holds.
        persistent_ids: each persistent id as far as flat values rebuild it, e.g.
            ``("storage", "torch.FloatStorage", "0", "cpu", 4096)``; None where it was not flat.
        error: why the stream could not be read to its end, or None.
    """

    globals: list[str] = field(default_factory=list)
    strings: set[str] = field(default_factory=set)
    persistent_ids: list[object] = field(default_factory=list)
    error: str | None = None


def scan_pickle(data: bytes | BinaryIO) -> PickleScan:
    """Walk the opcodes of ``data``, tracking just enough of the stack to name globals and
    persistent ids: strings, integers, marks, tuples and the memo. Never raises on garbage.

    ``data`` is one pickle's bytes, or a binary stream read from its position to the pickle's
    STOP and left just past it (torch's legacy format writes several pickles one after another).
    """
    scan = PickleScan()
    values: list[object] = []  # flat values on the stack; None stands for anything else
    memo: dict[int, object] = {}
    marks: list[int] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            kind = op.name
            if kind in _STRING_OPS or kind in _INT_OPS:
                values.append(arg)
                if isinstance(arg, str) and len(arg) < SHORT_STRING:
                    scan.strings.add(arg)
            elif kind == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                values.append(_qualified(module, name))
                scan.globals.append(values[-1])
            elif kind == "STACK_GLOBAL":
                module, name = (values[-2:] if len(values) >= 2 else [None, None])
                values[-2:] = [_qualified(str(module), str(name))]
                scan.globals.append(values[-1])
            elif kind in _PUT_OPS:
                memo[arg] = values[-1] if values else None
            elif kind == "MEMOIZE":
                memo[len(memo)] = values[-1] if values else None
            elif kind in _GET_OPS:
                values.append(memo.get(arg))
            elif kind == "MARK":
                marks.append(len(values))
            elif kind == "TUPLE" and marks:
                start = marks.pop()
                values[start:] = [tuple(values[start:])]
            elif kind == "BINPERSID":
                scan.persistent_ids.append(values[-1] if values else None)
            elif kind not in _TUPLE_OPS:
                values.append(None)  # any other opcode ends a run of flat values
    except Exception as exc:  # pickletools raises ValueError, IndexError and others on garbage
        scan.error = str(exc) or type(exc).__name__
    return scan


def read_plain_pickle(stream: BinaryIO) -> int | str | list | None:
    """The value of a pickle holding one integer, one string or a flat list of them (the
    bookkeeping pickles of torch's legacy format), read from ``stream``'s position to its STOP.

    None for anything else, garbage included; nothing but those values is built.
    """
    items: list = []
    is_list = False
    try:
        for op, arg, _ in pickletools.genops(stream):
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
