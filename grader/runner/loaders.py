"""Loading a submission: one function per form, each returning a ``Loaded`` network ready to run.

Every problem with the submission becomes a ``GraderError`` whose message and hint are written for
the student. Pickles are read only with ``weights_only=True`` (plus the stock torch.nn classes).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from grader.errors import GraderError
from grader.messages import say
from grader.runner.classes import failure_at, import_code, resolve_bindings
from grader.runner.describe import onnx_macs_per_image
from grader.runner.network import Loaded, one_line
from grader.stock_layers import stock_module_classes

NESTING_KEYS = ("state_dict", "model_state_dict", "model", "net")
PREFIXES = ("module.", "_orig_mod.")
HOMEWORK_INPUT = {"scale": 1.0, "mean": None, "std": None}  # ToTensor: 0..1, no normalisation (copy it)


def load(request: dict) -> Loaded:
    """Load the network the request describes. Raises GraderError naming what is wrong."""
    weights = Path(request["weights"])
    form = request["form"]
    manifest_input = request.get("input")
    default_input = dict(HOMEWORK_INPUT)
    if form == "pickled-module":
        loaded = _load_pickled_module(weights, request.get("classes") or [])
    elif form in ("state-dict", "safetensors"):
        state = _read_safetensors(weights) if form == "safetensors" else _unwrap(_torch_load(weights), weights)
        module, notes = build_from_entry(Path(request["entry"][0]), request["entry"][1])
        notes += load_weights(module, state, source=weights.name, code=Path(request["entry"][0]).name)
        loaded = Loaded(module, module, form, default_input, notes=notes)
    elif form == "run-folder":
        loaded = _load_grader_checkpoint(weights)
    elif form == "torchscript":
        module = _guard(lambda: torch.jit.load(str(weights), map_location="cpu"), weights, "TorchScript")
        loaded = Loaded(module, module, form, default_input)
    elif form == "exported":
        program = _guard(lambda: torch.export.load(str(weights)), weights, "torch.export")
        module = program.module()
        loaded = Loaded(module, module, form, default_input, fixed_batch=_static_batch(module))
    elif form == "onnx":
        loaded = _load_onnx(weights)
    else:
        raise GraderError(f"unknown form {form!r}", "this is a grader bug; please report it")
    if manifest_input:
        loaded.input = manifest_input
    if loaded.module is not None:
        try:
            loaded.module.eval()
        except (NotImplementedError, RuntimeError):  # exported programs fix their mode at export time
            loaded.notes.append(say("note.export_mode"))
    return loaded


def _static_batch(module: nn.Module) -> int | None:
    """The batch size an exported program was specialised to, or None when it is dynamic."""
    for node in getattr(module, "graph").nodes:
        if node.op == "placeholder" and hasattr(node.meta.get("val"), "shape"):
            size = node.meta["val"].shape[0]
            return size if isinstance(size, int) else None
    return None


def _guard(fn: Callable, weights: Path, what: str):
    try:
        return fn()
    except Exception as exc:
        raise GraderError(say("load.failed", file=weights.name, form=what, reason=one_line(exc))) from None


def _torch_load(weights: Path, own: list[tuple[type, str]] = ()):
    """``torch.load`` with ``weights_only=True`` plus the stock nn classes and ``own``, the student's
    classes each bound to the name its pickle uses (``grader.runner.classes``); never unrestricted."""
    try:
        with torch.serialization.safe_globals([*stock_module_classes(), *own]):
            return torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = one_line(exc)
        if "Unsupported global" in text or "weights_only" in text.lower():
            raise GraderError(say("load.refused_globals", file=weights.name, reason=text[:300])) from None
        raise GraderError(say("load.unreadable", file=weights.name, reason=text[:300])) from None


def _load_pickled_module(weights: Path, bindings: list[dict]) -> Loaded:
    """A whole pickled network: stock layers, torchvision models, or the student's own classes
    (``bindings``: each imported from the code that defines it and checked, in this process)."""
    own = resolve_bindings(bindings)
    obj = _torch_load(weights, own)
    if isinstance(obj, dict):
        obj = next((obj[k] for k in NESTING_KEYS if isinstance(obj.get(k), nn.Module)), obj)
    if not isinstance(obj, nn.Module):
        raise GraderError(say("load.not_a_network", file=weights.name, kind=type(obj).__name__))
    origins = sorted({say("note.pickled_class", name=b["name"], origin=b.get("origin") or b["module"])
                      for b in bindings})
    notes = [say("note.pickled_classes", classes=tuple(origins))] if origins else []
    return Loaded(obj, obj, "pickled-module", dict(HOMEWORK_INPUT), notes=notes)


def _load_grader_checkpoint(weights: Path) -> Loaded:
    from grader.models import build

    ckpt = _torch_load(weights)
    if not isinstance(ckpt, dict) or ckpt.get("format") != "grader-checkpoint":
        raise GraderError(say("load.not_grader_checkpoint", file=weights.name))
    try:
        module = build(ckpt["arch"]["name"], **ckpt["arch"].get("args", {}))
    except (KeyError, TypeError) as exc:
        raise GraderError(say("load.unknown_architecture", file=weights.name, reason=str(exc))) from None
    notes = load_weights(module, ckpt.get("state_dict", {}), source=weights.name)
    given = ckpt.get("input") or {}
    net_input = {"scale": float(given.get("scale", 1.0)), "mean": given.get("mean"), "std": given.get("std")}
    history = ckpt.get("history") if isinstance(ckpt.get("history"), dict) else None
    return Loaded(module, module, "run-folder", net_input, history=history, notes=notes)


def _read_safetensors(weights: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(weights), device="cpu")
    except Exception as exc:
        raise GraderError(say("load.bad_safetensors", file=weights.name, reason=one_line(exc))) from None


def _unwrap(obj, weights: Path) -> dict:
    """The tensor dict inside a checkpoint: bare, or under one of ``NESTING_KEYS``."""
    for _ in range(3):
        if isinstance(obj, dict) and not _is_tensor_dict(obj):
            inner = next((obj[k] for k in NESTING_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not _is_tensor_dict(obj):
        keys = ", ".join(list(map(str, obj))[:8]) if isinstance(obj, dict) else type(obj).__name__
        raise GraderError(say("load.no_state_dict", file=weights.name, found=keys, keys=", ".join(NESTING_KEYS)))
    return obj


def _is_tensor_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def strip_prefixes(state: dict) -> dict:
    """Drop the ``module.`` (DataParallel) and ``_orig_mod.`` (torch.compile) prefixes from every key."""
    out = {}
    for key, value in state.items():
        while key.startswith(PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def load_weights(module: nn.Module, state: dict, *, source: str, code: str | None = None) -> list[str]:
    """Load ``state`` into ``module``; every missing or unexpected key is an error that names them.

    Args:
        code: the file of the student's code that built ``module``; tensors whose shapes differ
            from the network's are then an error that lists them and points there.

    Returns:
        notes for the TA (e.g. prefixes that were stripped).
    """
    notes = []
    stripped = strip_prefixes(state)
    if stripped.keys() != state.keys():
        notes.append(say("note.prefixes_stripped", prefixes="/".join(PREFIXES), file=source))
    shapes = _shapes_differ(module, stripped)
    if code is not None and shapes:
        raise GraderError(say("load.shapes_differ", file=source, code=code, name=type(module).__name__,
                              shapes=shapes))
    try:
        result = module.load_state_dict(stripped, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise GraderError(say("load.shape_mismatch", file=source, reason=one_line(exc)[:600])) from None
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    unexpected = list(result.unexpected_keys)
    if not (missing or unexpected):
        return notes
    if missing and unexpected:
        detail = say("load.both_keys", missing=_few(missing), unexpected=_few(unexpected))
    else:
        detail = say("load.missing_keys", keys=_few(missing)) if missing else \
            say("load.unexpected_keys", keys=_few(unexpected))
    if code is None:
        raise GraderError(say("load.keys_mismatch", file=source, detail=detail))
    raise GraderError(say("load.keys_differ", file=source, detail=detail, code=code, name=type(module).__name__))


def _shapes_differ(module: nn.Module, state: dict) -> tuple:
    """The first six tensors of ``state`` whose shape is not the network's, each said as a pair of
    shapes, and how many more there are."""
    own = module.state_dict()
    pairs = [say("load.shape_pair", key=key, saved=str(list(value.shape)), built=str(list(own[key].shape)))
             for key, value in state.items()
             if key in own and isinstance(value, torch.Tensor) and value.shape != own[key].shape]
    return tuple(pairs[:6]) + ((say("load.more_shapes", count=len(pairs) - 6),) if len(pairs) > 6 else ())


def _few(keys: list[str]):
    """The first six keys, and how many more there are."""
    shown = ", ".join(keys[:6])
    return say("load.more_keys", keys=shown, count=len(keys) - 6) if len(keys) > 6 else shown


def build_from_entry(file: Path, name: str) -> tuple[nn.Module, list[str]]:
    """Import ``file`` and call ``name()`` (a function or class) to build the network.

    Without ``name``, the one ``nn.Module`` class ``file`` defines that takes no arguments is built.

    Returns:
        the network, and notes for the TA (which class was built in place of ``name``).

    Raises:
        GraderError: when the file fails to import, names nothing to build, or builds no network.
    """
    code = import_code(file, "submission_model")
    builder, notes = getattr(code, name, None), []
    if builder is None:
        builder = _only_network_class(code, file, name)
        notes.append(say("note.built_instead", file=file.name, built=builder.__name__, name=name))
    try:
        module = builder()
    except BaseException as exc:
        key = "entry.builder_offline" if _needs_network(exc) else "entry.builder_failed"
        raise GraderError(say(key, file=file.name, name=getattr(builder, "__name__", name),
                              reason=failure_at(exc, file))) from None
    if not isinstance(module, nn.Module):
        raise GraderError(say("entry.not_a_module", file=file.name, name=name, kind=type(module).__name__))
    return module, notes


def _needs_network(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it came from, is a connection that failed (a download of
    pretrained weights): the sandbox has no network."""
    seen: BaseException | None = exc
    for _ in range(8):  # a chain of causes is short; a cycle would not end
        if seen is None:
            return False
        if any(cls.__name__ in _NETWORK_ERRORS for cls in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# Exception classes a failed connection raises: the standard library's, and requests' by its name.
_NETWORK_ERRORS = frozenset({"URLError", "ConnectionError", "gaierror"})


def _only_network_class(code, file: Path, name: str) -> type:
    """The one nn.Module class ``code`` defines that takes no arguments, when ``name`` is missing.

    Raises:
        GraderError: listing the candidates (and the entry line to add) when there is not exactly one.
    """
    classes = list(dict.fromkeys(obj for obj in vars(code).values()  # an alias (Model = Net) counts once
                                 if isinstance(obj, type) and issubclass(obj, nn.Module)
                                 and obj.__module__ == code.__name__))
    candidates = [cls for cls in classes if _takes_no_arguments(cls)]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        names = ", ".join(cls.__name__ for cls in candidates)
        raise GraderError(say("entry.several_networks", file=file.name, name=name, names=names,
                              last=candidates[-1].__name__))
    if classes:
        raise GraderError(say("entry.classes_need_args", file=file.name, name=name,
                              names=", ".join(cls.__name__ for cls in classes), last=classes[-1].__name__))
    raise GraderError(say("entry.no_network", file=file.name, name=name))


def _takes_no_arguments(cls: type) -> bool:
    """Whether ``cls()`` can be called: every parameter of its constructor has a default."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)


def _load_onnx(weights: Path) -> Loaded:
    try:
        import onnxruntime as ort
    except ImportError:
        raise GraderError(say("load.no_onnxruntime", file=weights.name)) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    try:  # from the path, not bytes: a model's external data (model.onnx.data) is found beside it
        session = ort.InferenceSession(str(weights), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise GraderError(say("load.bad_onnx", file=weights.name, reason=one_line(exc)[:300])) from None
    input_name = session.get_inputs()[0].name

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: x.numpy()})[0])

    parameters = macs = None
    try:
        import onnx

        model = onnx.load(str(weights), load_external_data=False)  # the graph and shapes suffice
        parameters = int(sum(np.prod(t.dims) for t in model.graph.initializer))
        macs = onnx_macs_per_image(model)
    except Exception:  # the counts are informative only; onnx (not onnxruntime) may be absent
        pass
    return Loaded(forward, None, "onnx", dict(HOMEWORK_INPUT), parameters=parameters,
                  macs_per_image=macs)
