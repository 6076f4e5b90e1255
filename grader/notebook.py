"""``grader.check(net, history=hist)`` in a student's own notebook: the self-check on the network
in memory, graded exactly as ``grader check`` grades a hand-in.

    check(net, history=None, ...) -> NotebookResult     save, grade in the sandbox, render
    save_hand_in(net, folder, history=None) -> Path     the folder as the student would hand it in
    NotebookResult                                      .accuracy .score .max_score .checks; shows itself

The network is written to a private temporary folder the way a student hands it in: a network
of stock ``torch.nn`` (or torchvision) layers pickled whole as ``model.pth``; one of the
student's own classes pickled whole beside the code that defines it, found the way the intake
reads a notebook (the session's cells, or the class's file, kept to their imports and
definitions). The folder is graded by ``grade_one`` with the rubric's public checks, in the
sandbox, and removed. Nothing trains, and nothing outside that folder is written.
"""

from __future__ import annotations

import json
import linecache
import os
import pickle
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from grader.errors import GraderError
from grader.messages import error_for, say
from grader.results import GradeResult
from grader.rubric import CheckResult

HISTORY_SUFFIXES = (".json", ".csv", ".pt", ".pth")


@dataclass(frozen=True)
class NotebookResult:
    """The self-check's grade, as a notebook shows it.

    Attributes:
        accuracy: test accuracy measured in the sandbox, 0..1 (None: not graded).
        score, max_score: points of the rubric's public checks.
        passed: every check passed.
        checks: each check's result (name, value, passed, score, max_score, detail).
        error: why the network could not be graded (None when it was).
        result: the whole grade, as results.json holds it.
        report_html: the report page (None when it could not be drawn).
        lang: the language of the report and of this display.
    """

    accuracy: float | None
    score: float
    max_score: float
    passed: bool
    checks: tuple[CheckResult, ...]
    error: str | None
    result: GradeResult
    report_html: str | None
    lang: str = "en"

    @classmethod
    def of(cls, result: GradeResult, report_html: str | None, lang: str = "en") -> "NotebookResult":
        """The display of ``result``."""
        verdict = result.verdict
        return cls(accuracy=None if result.evaluation is None else float(result.evaluation.accuracy),
                   score=float(verdict.score), max_score=float(verdict.max_score), passed=bool(verdict.passed),
                   checks=tuple(verdict.checks), error=None if result.graded else result.error,
                   result=result, report_html=report_html, lang=lang)

    def verdict_line(self) -> str:
        """Accuracy, checks passed and score in one line; or why it was not graded."""
        from grader.report.i18n import platform_strings

        t = platform_strings(self.lang)
        if self.accuracy is None:
            return t["gs_not_graded"].format(error=self.result.student_error_text(self.lang) or "unknown error")
        return t["nb_verdict"].format(accuracy=f"{self.accuracy * 100:.2f}%", total=len(self.checks),
                                      passed=sum(c.passed for c in self.checks),
                                      score=f"{self.score:g}", max=f"{self.max_score:g}")

    def __repr__(self) -> str:
        return f"<grader result: {self.verdict_line()}>"

    def _repr_html_(self) -> str:
        from grader.report.context import check_detail, check_name
        from grader.report.findings import check_reason
        from grader.report.i18n import platform_strings
        from grader.report.render import environment

        t = platform_strings(self.lang)
        # each check named and its detail said in the display's language, integrity's reasons too
        rows = [(c, check_name(c, self.lang),
                 check_reason(c.detail, self.result, t, self.lang) or check_detail(c, self.result, self.lang))
                for c in self.checks]
        return environment().get_template("notebook_result.html.j2").render(
            t=t, verdict=self.verdict_line(), passed=self.passed,
            graded=self.accuracy is not None, rows=rows, report=self.report_html)


def check(net: Any, *, history: Any = None, rubric: str | os.PathLike | None = None,
          data: str | os.PathLike | None = None, lang: str = "en", partial: bool = False) -> NotebookResult:
    """Grade ``net`` as ``grader check`` grades a hand-in, from inside a notebook.

    Args:
        net: the trained network (an ``nn.Module``; a DataParallel or torch.compile wrapper is
            unwrapped). It is copied to the CPU for saving when it lives elsewhere; it is never changed.
        history: the training log: a dict of per-epoch lists, a list of per-epoch dicts, or the path
            of a history file (the forms a hand-in's history takes); None hands in none.
        rubric: the course's rubric.toml [default: the homework's assertions]; its public checks run.
        data: a CIFAR-10 source [default: $GRADER_DATA, else the copy in the grader cache].
        lang: "en" or "zh", for the report and the display.
        partial: accept a data source smaller than CIFAR-10.
    Returns:
        the grade, which a notebook shows as its verdict, checks and report.
    Raises:
        GraderError: no data, no working sandbox, a rubric that cannot be read, or a network whose
            class's code cannot be found (each message says what to do).
    """
    from grader.pipeline import grade_one
    from grader.report.i18n import strings
    from grader.rubric import load_rubric

    strings(lang)  # an unknown language is refused before any work
    chosen = load_rubric(rubric).public()
    with _said_in(lang):
        source = _data_source(data)
        dataset = _load_data(source, partial)
    with _said_in(lang):
        _require_sandbox()
    with tempfile.TemporaryDirectory(prefix="grader-notebook-") as scratch:
        with _said_in(lang):
            folder = save_hand_in(net, Path(scratch) / "notebook", history=history)
        result = grade_one(folder, data=dataset, rubric=chosen)
    return NotebookResult.of(result, _report(result, lang), lang)


@contextmanager
def _said_in(lang: str) -> Iterator[None]:
    """Raise a catalogue GraderError from the block in ``lang``, the notebook's: a student reads it there."""
    try:
        yield
    except GraderError as exc:
        if exc.detail is None or lang == "en":
            raise
        said_here = error_for(exc.detail, str(exc), lang)
        raise GraderError(said_here.message, said_here.hint) from None


def _data_source(data: str | os.PathLike | None) -> str | os.PathLike:
    """``data``, else $GRADER_DATA, else the cache's download; never a download from a notebook.

    Raises:
        GraderError: when none is there.
    """
    from grader.data.cache import cache_root
    from grader.data.locate import ENV_VAR, resolve_source

    path, how = resolve_source(data)
    if path is None:
        raise GraderError(say("check.no_data", variable=ENV_VAR, cache=str(cache_root())))
    return path


def _load_data(source: str | os.PathLike, partial: bool):
    """``load_cifar10`` with the notebook's fix for a copy that is not all of CIFAR-10.

    Raises:
        GraderError: as ``load_cifar10``; for a partial copy, its hint is ``partial=True``.
    """
    from grader.data import load_cifar10

    try:
        return load_cifar10(source, expect_full=not partial)
    except GraderError as exc:
        if exc.detail is None or exc.detail.key != "data.not_full":
            raise
        raise GraderError(say("check.partial_data", problem=exc.detail)) from None


SANDBOX_MISSING = ("sandbox.no_bwrap", "sandbox.cannot_create")  # preflight's errors that grader.check rewords


def _require_sandbox() -> None:
    """The machine checks of ``grader check``, with a fix that fits a notebook.

    Raises:
        GraderError: when bubblewrap is missing or cannot sandbox, or no grading secret is usable.
    """
    from grader.pipeline import preflight

    try:
        preflight(sandbox=True)
    except GraderError as exc:
        if exc.detail is None or exc.detail.key not in SANDBOX_MISSING:
            raise
        raise GraderError(say("check.no_sandbox", problem=exc.detail or exc.message)) from None


def _report(result: GradeResult, lang: str) -> str | None:
    from grader.report.render import render_html

    try:
        return render_html(result, lang=lang)
    except Exception:  # noqa: BLE001 - the grade stands without its pictures; the display says so
        return None


# --- saving the hand-in ------------------------------------------------------------------------


def save_hand_in(net: Any, folder: Path, *, history: Any = None) -> Path:
    """Write ``net`` (and ``history``) into the new folder ``folder`` as a student hands them in.

    Returns:
        ``folder``: ``model.pth`` (the network pickled whole), the code of the student's own
        classes (``model.py``, or ``<module>.py`` named by a ``submission.toml`` entry), and
        ``history.json`` (or the history file given).
    Raises:
        GraderError: for something that is not a network, a class whose code cannot be found, or a
            history of the wrong shape.
    """
    import torch

    net = _unwrap(net)
    if not isinstance(net, torch.nn.Module):
        raise GraderError(say("check.not_a_module", kind=type(net).__name__))
    folder.mkdir(parents=True)
    own = own_classes(net)
    if own:
        name, source = class_source(own)
        (folder / name).write_text(source, encoding="utf-8")
        if name != "model.py":  # the pickle names <module>.Net: the code file must be that module
            (folder / "submission.toml").write_text(f'entry = "{name}:{own[0].__name__}"\n', encoding="utf-8")
    try:
        torch.save(_on_cpu(net), folder / "model.pth")
    except (pickle.PicklingError, AttributeError, TypeError) as exc:  # what pickle raises for what it cannot save
        raise GraderError(say("check.unpicklable", reason=f"{type(exc).__name__}: {exc}")) from None
    if history is not None:
        _write_history(history, folder)
    return folder


def _unwrap(net: Any) -> Any:
    """The network inside a DataParallel/DistributedDataParallel (``.module``) or torch.compile
    (``._orig_mod``) wrapper, as the student would save it."""
    for _ in range(4):  # wrappers nest at most a few deep
        inner = getattr(net, "_orig_mod", None) or (
            getattr(net, "module", None) if type(net).__name__.endswith("DataParallel") else None)
        if inner is None:
            return net
        net = inner
    return net


def _on_cpu(net):
    """``net``, or a CPU copy of it when a parameter or buffer lives elsewhere (the student's own
    network stays where it is)."""
    import copy

    tensors = [*net.parameters(), *net.buffers()]
    return net if all(t.device.type == "cpu" for t in tensors) else copy.deepcopy(net).cpu()


def own_classes(net) -> list[type]:
    """The classes of ``net``'s modules that neither torch nor torchvision defines, in order."""
    found = []
    for module in net.modules():
        cls = type(module)
        if cls.__module__.split(".")[0] not in ("torch", "torchvision") and cls not in found:
            found.append(cls)
    return found


def class_source(classes: list[type]) -> tuple[str, str]:
    """The file name and source that define ``classes`` for the intake: their module's imports,
    definitions and the assignments those read (``definitions_source``).

    Raises:
        GraderError: when the classes come from several modules or from a package, or their source
            cannot be found.
    """
    from grader.submission.model_code import defined_classes, definitions_source

    modules = sorted({cls.__module__ for cls in classes})
    if len(modules) > 1:
        raise GraderError(say("check.several_modules", modules=", ".join(modules)))
    module = modules[0]
    if module not in ("__main__", "model") and not module.isidentifier():
        raise GraderError(say("check.package_module", module=module))
    source = definitions_source(_cells(classes, module))
    missing = [cls.__name__ for cls in classes if cls.__name__ not in defined_classes(source)]
    if missing:
        raise GraderError(say("check.source_missing", names=", ".join(missing), module=module))
    return ("model.py" if module in ("__main__", "model") else f"{module}.py"), source


def _cells(classes: list[type], module: str) -> list[str]:
    """The code that defined ``classes``: an IPython session's inputs in the order they ran, else
    every file (or cell, through linecache) their methods were compiled from."""
    namespace = vars(sys.modules[module]) if module in sys.modules else {}
    inputs = namespace.get("In") if module == "__main__" else None
    if isinstance(inputs, list) and any(isinstance(cell, str) and cell for cell in inputs):
        return [cell for cell in inputs if isinstance(cell, str)]
    files = []
    for cls in classes:
        for value in vars(cls).values():
            code = getattr(value, "__code__", None)
            if code is not None and code.co_filename not in files:
                files.append(code.co_filename)
        if not files and getattr(sys.modules.get(module), "__file__", None):
            files.append(sys.modules[module].__file__)
    return ["".join(linecache.getlines(name)) for name in files]


def _write_history(history: Any, folder: Path) -> None:
    """``history.json`` from a dict or list of per-epoch values, or a copy of a history file."""
    if isinstance(history, (str, os.PathLike)):
        path = Path(history)
        if not path.is_file() or path.suffix.lower() not in HISTORY_SUFFIXES:
            raise GraderError(say("check.history_suffix", file=str(path)))
        shutil.copyfile(path, folder / f"history{path.suffix.lower()}")
        return
    if not isinstance(history, (dict, list, tuple)):
        raise GraderError(say("check.history_type", kind=type(history).__name__))
    text = json.dumps(_plain(history, "history"), allow_nan=True)
    (folder / "history.json").write_text(text, encoding="utf-8")


def _plain(value: Any, where: str) -> Any:
    """``value`` as JSON's lists, dicts and numbers (tensors and NumPy values as their numbers)."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if hasattr(value, "tolist"):  # a tensor or a NumPy array or scalar
        return _plain(value.tolist(), where)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise GraderError(say("check.history_value", where=where, kind=type(value).__name__))
