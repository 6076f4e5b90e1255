"""The student's own network code, read as text in the grading process (never imported here).

    defined_classes(source) -> ("Net", ...)        top-level classes a Python source defines
    notebook_source(path) -> str                   a notebook's definitions as one Python module
    definitions_source(cells) -> str               the same, from cells' text
    ModelCode                                      one source of classes: model.py, a notebook, --model-code
    bind_classes(names, codes) -> ([ClassBinding], [unresolved])

A homework that says ``torch.save(net, path)`` with ``class Net(nn.Module)`` defined in a notebook
gives a pickle that names ``__main__.Net``. The pickle scan accepts exactly the names that some
code handed in (or named by the TA) defines as a top-level class, or a torchvision model class;
the sandboxed child then imports that code, checks that each name really is an ``nn.Module``
subclass defined there, and loads with ``weights_only=True`` with each class bound to its pickled
name. Everything else stays refused.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError
from grader.messages import say

NOTEBOOK_BYTES = 32 << 20  # a notebook with its outputs (plots as base64) is rarely over a few MiB
NOTEBOOK_CELLS = 5000
SOURCE_BYTES = 4 << 20
TORCHVISION_PREFIX = "torchvision.models."
# Names that stand for the script or notebook a class was defined in when it was pickled.
SCRIPT_MODULES = ("__main__", "__mp_main__")
TA_ORIGIN = "--model-code"  # how messages name the TA's class-wide model code


@dataclass(frozen=True)
class ModelCode:
    """One source of the student's classes.

    Attributes:
        path: the Python file the child imports (a notebook's definitions are written to one).
        module: the name the child imports it under (the file's stem).
        origin: how messages name it: ``model.py``, ``HW2.ipynb``, ``--model-code net.py``.
        classes: the top-level classes it defines.
    """

    path: Path
    module: str
    origin: str
    classes: tuple[str, ...]


@dataclass(frozen=True)
class ClassBinding:
    """A global a pickle names, and the class the child binds it to.

    Attributes:
        pickled: the global as the pickle names it, ``module.Name`` (``__main__.Net``).
        file: the code file to import, or None for a torchvision model class.
        module: the module to import (the file's module name, or ``torchvision.models.x``).
        name: the class's name in that module.
        origin: where the class comes from, for notes and messages.
    """

    pickled: str
    file: str | None
    module: str
    name: str
    origin: str

    def to_request(self) -> dict:
        """The binding as the child's request carries it."""
        return {"pickled": self.pickled, "file": self.file, "module": self.module, "name": self.name,
                "origin": self.origin}


def defined_classes(source: str) -> tuple[str, ...]:
    """The top-level classes ``source`` defines, in order (a later definition of a name counts once).

    Raises:
        SyntaxError: when ``source`` is not Python.
    """
    names = [node.name for node in ast.parse(source).body if isinstance(node, ast.ClassDef)]
    return tuple(dict.fromkeys(names))


def read_model_code(path: Path, *, origin: str, module: str | None = None) -> ModelCode:
    """A ``.py`` file as a source of classes.

    Raises:
        GraderError: when it is too large, not text, or not Python.
    """
    if path.stat().st_size > SOURCE_BYTES:
        raise GraderError(say("code.too_large", file=origin, mib=SOURCE_BYTES >> 20))
    try:
        source = path.read_text(encoding="utf-8-sig")
        classes = defined_classes(source)
    except UnicodeDecodeError:
        raise GraderError(say("code.not_utf8", file=origin)) from None
    except SyntaxError as exc:
        raise GraderError(say("code.syntax", file=origin, line=exc.lineno or 0, reason=str(exc.msg))) from None
    return ModelCode(path.resolve(), module or path.stem, origin, classes)


def notebook_model_code(notebook: Path, scratch: Path, *, origin: str | None = None) -> ModelCode:
    """A notebook's definitions, written as a module into ``scratch``, as a source of classes."""
    source = notebook_source(notebook)
    target = scratch / f"{_identifier(notebook.stem)}.py"
    while target.exists():  # two notebooks of one name in two folders
        target = target.with_name(f"{target.stem}_2.py")
    target.write_text(source, encoding="utf-8")
    target.chmod(0o644)  # the sandboxed child reads it as another user
    return ModelCode(target.resolve(), target.stem, origin or notebook.name, defined_classes(source))


def notebook_source(path: Path) -> str:
    """The definitions of a notebook's code cells as one Python module.

    Each cell is parsed on its own, IPython magics and shell lines dropped, a cell that is not
    Python skipped. Kept: imports (each made optional, as a missing ``google.colab`` must not stop
    a class from loading), class and function definitions, and the top-level assignments that
    those definitions read (``NUM_CLASSES = 10``, ``device = torch.device(...)``), transitively.
    Never loops, training or I/O: every other statement is dropped.

    Raises:
        GraderError: for a notebook over the size caps or not notebook JSON.
    """
    if path.stat().st_size > NOTEBOOK_BYTES:
        raise GraderError(say("notebook.too_large", file=path.name, mib=NOTEBOOK_BYTES >> 20))
    try:
        cells = json.loads(path.read_text(encoding="utf-8-sig"))["cells"]
        if not isinstance(cells, list):
            raise TypeError("cells is not a list")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise GraderError(say("notebook.unreadable", file=path.name, reason=f"{type(exc).__name__}: {exc}")) from None
    if len(cells) > NOTEBOOK_CELLS:
        raise GraderError(say("notebook.too_many_cells", file=path.name, count=len(cells), limit=NOTEBOOK_CELLS))
    return definitions_source([cell.get("source", "") for cell in cells
                               if isinstance(cell, dict) and cell.get("cell_type") == "code"])


def definitions_source(cells: list[str | list[str]]) -> str:
    """The definitions of code cells (each its text, or its list of lines), in order, as one
    Python module: what ``notebook_source`` keeps of a notebook, from cells already in hand (an
    IPython session's inputs)."""
    statements: list[ast.stmt] = []
    for text in cells:
        statements += _cell_statements(text)
    return _definitions_module(statements)


def _cell_statements(source: object) -> list[ast.stmt]:
    text = "".join(source) if isinstance(source, list) else str(source)
    if text.lstrip().startswith("%%"):  # a cell magic: the whole cell is not Python
        return []
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines)).body
    except SyntaxError:
        return []


def _definitions_module(statements: list[ast.stmt]) -> str:
    definitions = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    needed = {name for node in statements if isinstance(node, definitions) for name in _names_read(node)}
    kept_assignments: set[int] = set()
    changed = True
    while changed:  # an assignment a definition reads may itself read another one
        changed = False
        for i, node in enumerate(statements):
            if i not in kept_assignments and isinstance(node, (ast.Assign, ast.AnnAssign)) \
                    and _assigned(node) & needed:
                kept_assignments.add(i)
                needed |= _names_read(node)
                changed = True
    body: list[ast.stmt] = []
    for i, node in enumerate(statements):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            body.append(_optional(node))
        elif isinstance(node, definitions) or i in kept_assignments:
            body.append(node)
    header = "# The definitions of a notebook's code cells, extracted by grader (nothing else runs).\n"
    return header + ast.unparse(ast.Module(body=body, type_ignores=[])) + "\n"


def _names_read(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _assigned(node: ast.Assign | ast.AnnAssign) -> set[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _optional(node: ast.Import | ast.ImportFrom) -> ast.Try:
    """``try: <import> except ImportError: pass``."""
    handler = ast.ExceptHandler(type=ast.Name("ImportError", ast.Load()), name=None, body=[ast.Pass()])
    return ast.fix_missing_locations(ast.Try(body=[node], handlers=[handler], orelse=[], finalbody=[]))


def _identifier(stem: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    if cleaned.isidentifier() and cleaned.isascii():
        return cleaned
    return "notebook_" + hashlib.sha256(stem.encode("utf-8")).hexdigest()[:8]  # a name in Chinese, say


def bind_classes(names: list[str], codes: list[ModelCode]) -> tuple[list[ClassBinding], list[str]]:
    """Bind each global a pickle names to a class of the student's code or of torchvision.

    A name ``M.X`` binds when ``M`` is the script module (``__main__``) or a code file's module, and
    the first code in ``codes`` (resolution order) that defines ``X`` is taken; a torchvision model
    class (``torchvision.models.alexnet.AlexNet``) binds to itself.

    Returns:
        (bindings, the names that nothing defines).
    """
    bindings, unresolved = [], []
    for pickled in dict.fromkeys(names):
        module, _, name = pickled.rpartition(".")
        if pickled.startswith(TORCHVISION_PREFIX) and name[:1].isupper():
            bindings.append(ClassBinding(pickled, None, module, name, "torchvision"))
            continue
        code = next((c for c in codes if name in c.classes and module in (*SCRIPT_MODULES, c.module)), None)
        if code is None:
            unresolved.append(pickled)
        else:
            bindings.append(ClassBinding(pickled, str(code.path), code.module, name, code.origin))
    return bindings, unresolved


def find_model_code(folder: Path | None, entry_file: Path | None, model_code: Path | None,
                    scratch: Path | None) -> list[ModelCode]:
    """The sources of classes for one hand-in, in resolution order.

    Args:
        folder: the hand-in's folder (None for a bare checkpoint, which gets code only from the
            TA: never from the files beside it, which may be another student's).
        entry_file: the folder's model code (``model.py``, or the manifest entry's file), if it exists.
        model_code: the TA's class-wide model code (``--model-code``, rubric ``[submission]``).
        scratch: where notebooks' definitions are written as modules for the child (there is
            one whenever a notebook is to be read).

    A source that is not Python (a syntax error, a broken notebook) is left out here: the child
    reports the real error when it imports the file, and a pickle whose class only it defined
    is refused as a class nobody defines.
    """
    found: list[ModelCode] = []
    if folder is not None and entry_file is not None and entry_file.is_file():
        found += _tolerant(lambda: read_model_code(entry_file, origin=entry_file.relative_to(folder).as_posix()))
    if folder is not None:
        for notebook in sorted(folder.rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in notebook.parts and not notebook.name.startswith("."):
                found += _tolerant(lambda: notebook_model_code(notebook, _code_dir(scratch)))
    if model_code is not None:
        if model_code.suffix == ".ipynb":
            found += _tolerant(lambda: notebook_model_code(model_code, _code_dir(scratch),
                                                           origin=f"{TA_ORIGIN} {model_code.name}"))
        else:
            found += _tolerant(lambda: read_model_code(model_code, origin=f"{TA_ORIGIN} {model_code.name}"))
    return found


def own_names(codes: list[ModelCode]) -> frozenset[str]:
    """Every global under which a pickle may name a class of ``codes``: ``__main__.X`` (a class
    defined in the script or notebook that saved it) and ``<module>.X``."""
    return frozenset(f"{module}.{name}" for code in codes for name in code.classes
                     for module in (*SCRIPT_MODULES, code.module))


def _tolerant(read) -> list[ModelCode]:
    try:
        return [read()]
    except (GraderError, OSError):
        return []


def _code_dir(scratch: Path) -> Path:
    """``scratch/code``, readable by the sandboxed child (which runs as another user)."""
    folder = scratch / "code"
    folder.mkdir(mode=0o755, exist_ok=True)
    folder.chmod(0o755)
    return folder
