"""The child side of students' own classes: import their code here, in the sandbox, and turn each
binding the grading process made (``grader.submission.model_code.ClassBinding``) into a
``(class, "pickled.Name")`` pair for ``torch.serialization.safe_globals``.

    resolve_bindings(bindings) -> [(cls, pickled_name)]

Each resolved object must be a class that the named code itself defines and a subclass of
``nn.Module``: an alias (``Net = os.system``), a function or a class imported from elsewhere is
refused, so a binding can never smuggle a callable into the weights-only unpickler.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from torch import nn

from grader.errors import GraderError
from grader.messages import say
from grader.runner.network import one_line
from grader.submission.forms import import_time_statements, import_time_work

TORCHVISION_PREFIX = "torchvision.models."


def resolve_bindings(bindings: list[dict]) -> list[tuple[type, str]]:
    """``(class, pickled name)`` for every binding of the request, importing each code file once.

    Raises:
        GraderError: when a file fails to import, or a name is not an nn.Module class it defines.
    """
    modules: dict[str, ModuleType] = {}
    pairs = []
    for binding in bindings:
        if binding.get("file") is None:
            module = _torchvision_module(binding["module"])
        else:
            file = binding["file"]
            if file not in modules:
                modules[file] = import_code(Path(file), binding["module"])
            module = modules[file]
        pairs.append((_checked_class(module, binding["name"], binding["pickled"]), binding["pickled"]))
    return pairs


def import_code(file: Path, module_name: str) -> ModuleType:
    """Import a student's code file under ``module_name`` (its siblings importable beside it).

    Raises:
        GraderError: naming the line of the file where the import failed.
    """
    if str(file.parent) not in sys.path:
        sys.path.insert(0, str(file.parent))  # model.py may import its sibling modules
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(module_name, module)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from a script are its failures too
        raise import_error(exc, file) from None
    return module


def _torchvision_module(name: str) -> ModuleType:
    if not name.startswith(TORCHVISION_PREFIX):
        raise GraderError(f"{name} is not a torchvision model module", "this is a grader bug; please report it")
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise GraderError(say("code.torchvision_lacks", name=name, reason=one_line(exc))) from None


def _checked_class(module: ModuleType, name: str, pickled: str) -> type:
    obj = getattr(module, name, None)
    where = getattr(module, "__file__", None) or module.__name__
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        if obj is None:
            raise GraderError(say("code.class_missing", pickled=pickled, name=name, file=Path(where).name))
        raise GraderError(say("code.class_not_module", pickled=pickled, name=name, file=Path(where).name,
                              kind=type(obj).__name__))
    if obj.__module__ != module.__name__ or obj.__name__ != name:
        raise GraderError(say("code.class_elsewhere", pickled=pickled, name=name, file=Path(where).name,
                              defined=f"{obj.__module__}.{obj.__qualname__}"))
    return obj


def failure_at(exc: BaseException, file: Path) -> str:
    """``Type: message (model.py line N)``: the deepest frame in the student's file (a catalogue
    message when a line is known)."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)]
    line = exc.lineno if isinstance(exc, SyntaxError) and exc.lineno else lines[-1] if lines else None
    return say("code.failed_at", reason=one_line(exc), file=file.name, line=line) if line else one_line(exc)


def import_error(exc: BaseException, file: Path) -> GraderError:
    """The error for a failed import of ``file``; when a top-level statement that does work (a
    download, a training loop) failed, its hint names it and the guard that keeps it from running
    at import."""
    frames = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)]
    try:
        work = import_time_work(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        work = []
    failed = [s for s in work if frames and s.line <= frames[0] <= s.end]
    if failed:
        return GraderError(say("code.import_time_work", file=file.name, reason=failure_at(exc, file),
                               statements=import_time_statements(failed + [s for s in work if s not in failed])))
    return GraderError(say("code.import_failed", file=file.name, reason=failure_at(exc, file)))
