"""One grade as a typed, immutable value, and its results.json form (docs/results-schema.md).

    GradeResult.to_json() -> dict          the results.json object, keys in schema order
    GradeResult.from_json(obj) -> GradeResult   any results.json written so far; GraderError if not one
    metrics(result) -> {name: float}       every number a rubric can check, by its dotted name
    write_results(result, out_dir) -> Path      atomic
    read_results(path) -> GradeResult

Everything downstream of grading (report, gradebook, Gradescope, class report) reads a
GradeResult, never the JSON's keys; the rubric reads only ``metrics(result)``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from grader import __version__
from grader.atomic import write_json
from grader.errors import GraderError
from grader.evaluate import EvalResult
from grader.messages import Message, notes_detail, read_notes, error_text
from grader.integrity.claims import Measured, Mismatch
from grader.integrity.diagnosis import Diagnosis, convention_of
from grader.robustness.measure import Robustness
from grader.metric_names import AGGREGATES, MODEL_KEYS, RESULT_KEYS
from grader.rubric import CheckResult, Verdict

SCHEMA_VERSION = 1
RESULTS_NAME = "results.json"
MEMORISATION_FLAG = "memorisation-suspected"
HISTORY_MISMATCH_FLAG = "history-mismatch"
TEST_SET_FIT_FLAG = "test-set-fit"
DIAGNOSIS_APPLIED_FLAG = "diagnosis-applied"
UNOFFICIAL_DATA_FLAG = "unofficial-data"
BORDERLINE_FLAG = "borderline"
NO_SANDBOX_FLAG = "no-sandbox"
# Flags about the grading run rather than the student's work: every submission graded on the
# same data carries them, so review lists and per-student notes leave them out.
RUN_FLAGS = (UNOFFICIAL_DATA_FLAG,)
EVALUATION_KEYS = ("accuracy", "accuracy_ci", "loss", "top2_accuracy", "ece", "reliability",
                   "per_class_accuracy", "per_class_precision", "per_class_count", "confusion_matrix", "confused_pairs", "samples",
                   "confident_wrong")
_HINT = "pass the results.json that grader wrote, unedited, or grade the submission again " \
        "(docs/results-schema.md gives each key's type)"


class Status(str, enum.Enum):
    """Whether a submission was graded; its value is what results.json holds."""

    GRADED = "graded"
    ERROR = "error"


@dataclass(frozen=True)
class Student:
    """Who handed it in: ``id`` keys the gradebook, ``name`` is shown."""

    id: str
    name: str


@dataclass(frozen=True)
class SubmissionFacts:
    """What was handed in, as the grading process read it.

    Attributes:
        path: the file or folder graded.
        sha256: hex digest of the checkpoint file (None before it was found).
        format: the checkpoint's form (``pickled-module``, ``state-dict``, ...), None if unknown.
        files: the names handed in, relative to ``path``.
        manifest: the parsed submission.toml, or {}.
        input: ``{scale, mean, std}`` the network was fed, None before it ran.
        notes: remarks for a TA (e.g. stripped key prefixes, history keys read under another name);
            a note from the catalogue is a ``grader.messages.Message`` (a str that can be said in
            another language).
        history_error: why the history handed in could not be read (a failed claim: its checks
            fail, the rest is graded), a catalogue Message when it has an entry; None when it was
            read or none was handed in.
    """

    path: str
    sha256: str | None = None
    format: str | None = None
    files: tuple[str, ...] = ()
    manifest: Mapping[str, Any] = field(default_factory=dict)
    input: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    history_error: str | None = None


@dataclass(frozen=True)
class SandboxFacts:
    """Whether the submission's code ran sandboxed, and any warning about how."""

    enabled: bool
    warning: str | None = None


@dataclass(frozen=True)
class ModelFacts:
    """What the network is, as the child reported it (None: unknown, or not graded).

    Attributes:
        parameters: trainable and frozen parameters together.
        macs_per_image: multiply-accumulates of one forward pass, when countable.
        latency_ms_per_image: batched inference wall time / images.
        layers: ``{name, type, output_shape, parameters}`` per layer.
        blocks: the class name of each container, by module name (``{"layer1.0": "BasicBlock"}``);
            empty where unknown (results written before it, an export, ONNX).
        precision: how the logits were computed (docs/grading.md, "Precision and speed").
        source: who computed these facts: ``grader`` (only the grader's and torch's code ran in
            the child: stock layers, TorchScript, an export, ONNX, a run folder), ``reported``
            (the submission's own code ran there and could have rewritten them), ``unknown``
            (results written before provenance was recorded).
    """

    parameters: int | None = None
    macs_per_image: int | None = None
    latency_ms_per_image: float | None = None
    layers: tuple[Mapping[str, Any], ...] = ()
    blocks: Mapping[str, str] = field(default_factory=dict)
    precision: Mapping[str, Any] | None = None
    source: str = "grader"

    def to_json(self) -> dict:
        """The ``model`` object of results.json (``source`` goes to ``provenance``)."""
        return {key: _plain(getattr(self, key)) for key in MODEL_KEYS}


@dataclass(frozen=True)
class Memorisation:
    """The memorisation probe: accuracy on ``count`` test images and on perturbed copies of them.

    Attributes:
        clean_subset_acc: accuracy on the probed test images, 0..1.
        perturbed_acc: accuracy on their altered copies (mirrored, shifted, faint noise), 0..1.
        flagged: the drop between the two suggests a memorised test set.
        detail: one sentence for the report.
        count: images probed.
    """

    clean_subset_acc: float
    perturbed_acc: float
    flagged: bool
    detail: str
    count: int


@dataclass(frozen=True)
class AppliedFix:
    """A grade taken with the diagnosis's fix applied: the accuracy the hand-in scored as it was,
    and the share of the points earned with the fix that it loses (the rubric's penalty)."""

    accuracy_as_handed_in: float
    penalty: float


@dataclass(frozen=True)
class Integrity:
    """Facts about whether the grade can be trusted, measured by the grading process.

    Attributes:
        memorisation: the probe on altered copies of test images.
        training: accuracy and loss on a secret subset of training images, in eval mode.
        mismatches: the history's claims that the network does not bear out.
        fit: why the test set fits suspiciously better than the training images, or None.
        diagnosis: likely input conventions or output orders for a low score, with their fixes.
        applied: when the rubric graded with the diagnosis's fix (``apply_diagnosis``): the
            accuracy as handed in and the share of the points deducted; None otherwise.
    """

    memorisation: Memorisation | None = None
    training: Measured | None = None
    mismatches: tuple[Mismatch, ...] = ()
    fit: str | None = None
    diagnosis: tuple[Diagnosis, ...] = ()
    applied: AppliedFix | None = None

    def flags(self) -> set[str]:
        """The TA flags these facts raise."""
        found = {d.flag for d in self.diagnosis} | ({DIAGNOSIS_APPLIED_FLAG} if self.applied else set())
        if self.memorisation and self.memorisation.flagged:
            found.add(MEMORISATION_FLAG)
        if self.mismatches:
            found.add(HISTORY_MISMATCH_FLAG)
        if self.fit:
            found.add(TEST_SET_FIT_FLAG)
        return found


@dataclass(frozen=True)
class Timings:
    """Seconds spent: loading the network, inference, and the whole grade (None: not measured)."""

    load: float | None = None
    inference: float | None = None
    total: float | None = None


@dataclass(frozen=True)
class GradeResult:
    """One submission's grade.

    Attributes:
        status: GRADED, or ERROR with ``error`` saying what is wrong and what to do.
        error_detail: ``error`` as a catalogue message (``grader.messages``), to say it in another
            language; None for an error without a catalogue entry (and for results written before).
        student, submission, dataset, sandbox: who, what, on which data, how isolated.
        evaluation: the test-set metrics (None unless graded).
        model: the network's facts (empty unless graded).
        integrity: memorisation and other trust facts.
        robustness: accuracy under common corruptions (None unless asked for: ``--robustness``).
        history: the training log handed in: per-epoch lists, or None.
        verdict: the rubric's checks and score.
        flags: warnings for a TA, sorted (``borderline``, ``no-sandbox``, ...).
        timings: where the seconds went.
        device, grader_version, created: where and when it was graded, by which grader.
    """

    status: Status
    student: Student
    submission: SubmissionFacts
    dataset: Mapping[str, Any]
    sandbox: SandboxFacts
    evaluation: EvalResult | None = None
    model: ModelFacts = ModelFacts()
    integrity: Integrity = Integrity()
    robustness: Robustness | None = None
    history: Mapping[str, Any] | None = None
    verdict: Verdict = Verdict()
    flags: tuple[str, ...] = ()
    timings: Timings = Timings()
    error: str | None = None
    error_detail: Message | None = None
    device: str = "cpu"
    grader_version: str = __version__
    created: str = ""

    @property
    def graded(self) -> bool:
        return self.status is Status.GRADED

    @property
    def passed(self) -> bool:
        """Graded, and every check passed."""
        return self.graded and all(c.passed for c in self.verdict.checks)

    @property
    def student_error(self) -> str | None:
        """``error`` as a student reads it: the grading machine's folders above the hand-in left
        out (``/home/ta/hw2/s2400002/model.pt`` -> ``s2400002/model.pt``)."""
        return without_folders(self.error, self.submission.path)

    @property
    def student_error_detail(self) -> Message | None:
        """``error_detail`` as a student reads it: the folders above the hand-in left out of its
        arguments, as in ``student_error``."""
        if self.error_detail is None:
            return None
        return self.error_detail.mapped(lambda text: without_folders(text, self.submission.path))

    def student_error_text(self, lang: str = "en") -> str | None:
        """The error as a student reads it in ``lang`` (``grader.messages.error_text``); None when graded."""
        if self.error is None:
            return None
        return error_text(self.student_error_detail, self.student_error or "", lang)

    @property
    def submission_flags(self) -> list[str]:
        """The flags that concern the submission itself (not ``RUN_FLAGS``)."""
        return [f for f in self.flags if f not in RUN_FLAGS]

    def replace(self, **changes) -> "GradeResult":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        """The results.json object (schema 1), keys in ``RESULT_KEYS`` order."""
        return _to_json(self)

    @classmethod
    def from_json(cls, obj: Any) -> "GradeResult":
        """Read a results.json object written by any grader so far.

        Raises:
            GraderError: when ``obj`` is not a schema-1 result, naming the key at fault.
        """
        return _from_json(obj)


def without_folders(text: str | None, path: str | None) -> str | None:
    """``text`` with the folder that holds ``path`` (a hand-in) left out wherever it is named, so
    that a hand-in is named by its name within the class folder. Pure: no file is looked at."""
    parent = str(path or "").replace("\\", "/").rstrip("/").rpartition("/")[0]
    if not text or not parent:
        return text
    return text.replace(parent + "/", "").replace(parent.replace("/", "\\") + "\\", "")


# --- building a result ---------------------------------------------------------------------


def new_result(path: str | Path, *, dataset: Mapping[str, Any], sandbox: bool,
               created: str | None = None) -> GradeResult:
    """A result before anything was read: status GRADED, no measurements, no checks."""
    path = Path(path)
    name = path.stem if path.is_file() else path.name
    return GradeResult(status=Status.GRADED, student=Student(name, name), submission=SubmissionFacts(str(path)),
                       dataset=dict(dataset), sandbox=SandboxFacts(bool(sandbox)),
                       created=created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def as_error(result: GradeResult, message: str, *, sandbox: SandboxFacts | None = None,
             detail: Message | None = None) -> GradeResult:
    """``result`` marked ERROR with ``message`` (``detail``: the same as a catalogue message);
    every measurement dropped."""
    return result.replace(status=Status.ERROR, error=message, error_detail=detail, evaluation=None, model=ModelFacts(),
                          integrity=Integrity(), robustness=None, sandbox=sandbox or result.sandbox)


def with_verdict(result: GradeResult, verdict: Verdict, *, total_seconds: float | None) -> GradeResult:
    """``result`` with the rubric's verdict, the TA flags it implies and the total time."""
    flags = set(result.flags)
    if verdict.borderline:
        flags.add(BORDERLINE_FLAG)
    if not result.sandbox.enabled:
        flags.add(NO_SANDBOX_FLAG)
    flags |= result.integrity.flags()
    return result.replace(verdict=verdict, flags=_with_run_flags(flags, result.dataset),
                          timings=dataclasses.replace(result.timings, total=total_seconds))


def _with_run_flags(flags, dataset: Mapping[str, Any]) -> tuple[str, ...]:
    flags = set(flags)
    if dataset.get("official") is False:
        flags.add(UNOFFICIAL_DATA_FLAG)
    return tuple(sorted(flags))


# --- the rubric's view ---------------------------------------------------------------------


def metrics(result: GradeResult) -> dict[str, float]:
    """Every number a rubric can check, by its dotted name (``grader.metric_names``).

    A list (a per-epoch history) gives its last value under its own name, a table (per class)
    one value per key; both give their aggregates (``.min``, ``.max``, ...). Missing or null
    values, and anything not a finite number, are left out. An ungraded result has none.
    """
    if not result.graded:
        return {}
    out: dict[str, float] = {}
    _flatten(result.to_json(), "", out)
    return out


def _flatten(node: Any, name: str, out: dict[str, float]) -> None:
    if _is_number(node):
        out[name] = float(node)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            _flatten(value, f"{name}.{key}" if name else str(key), out)
        _aggregate([v for v in node.values() if _is_number(v)], name, out, last=False)
    elif isinstance(node, (list, tuple)) and name:
        numbers = [v for v in node if _is_number(v)]
        if numbers and len(numbers) == len(node):
            out[name] = float(numbers[-1])  # a per-epoch list: its final epoch
            _aggregate(numbers, name, out, last=True)


def _aggregate(values: list, name: str, out: dict[str, float], *, last: bool) -> None:
    if not values or not name:
        return
    floats = [float(v) for v in values]
    found = {"min": min(floats), "max": max(floats), "mean": sum(floats) / len(floats),
             "first": floats[0], "last": floats[-1]}
    for key in AGGREGATES:
        out.setdefault(f"{name}.{key}", found[key])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- results.json --------------------------------------------------------------------------


def write_results(result: GradeResult, out_dir: str | Path) -> Path:
    """Write ``out_dir/results.json`` atomically; returns the path.

    Raises:
        ValueError: when the result holds NaN or infinity (the schema forbids them).
    """
    return write_json(Path(out_dir) / RESULTS_NAME, _finite(result.to_json()))


def read_results(path: str | Path) -> GradeResult:
    """Read a results.json file.

    Raises:
        GraderError: naming the file when it is missing, not JSON, or not a result.
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GraderError(f"{path} does not exist", "pass the results.json that grader grade wrote") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GraderError(f"{path} is not a JSON results file ({exc})",
                          "pass the results.json that grader grade wrote") from None
    try:
        return GradeResult.from_json(obj)
    except GraderError as exc:
        raise GraderError(f"{path}: {exc.message}", exc.hint) from None


def _finite(obj):
    """``obj`` as JSON-ready lists and dicts; ValueError on NaN or infinity instead of invalid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError("results hold a NaN or infinite number")
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _plain(value: Any) -> Any:
    """Tuples and read-only mappings as the lists and dicts JSON holds."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _to_json(r: GradeResult) -> dict:
    lists = ("confused_pairs", "samples", "confident_wrong", "reliability")
    evaluation = {key: [] if key in lists else None for key in EVALUATION_KEYS}
    if r.evaluation is not None:
        evaluation.update(_plain(r.evaluation.to_dict()))
        evaluation.pop("count", None)
    memorisation = r.integrity.memorisation
    fields = {
        "schema_version": SCHEMA_VERSION,
        "status": r.status.value,
        "error": r.error,
        "error_detail": _detail(r.error_detail),
        "grader_version": r.grader_version,
        "created": r.created,
        "student": {"id": r.student.id, "name": r.student.name},
        "submission": {**_plain(dataclasses.asdict(r.submission)), "notes_detail": notes_detail(r.submission.notes),
                       "history_error_detail": _detail(r.submission.history_error)},
        "dataset": _plain(r.dataset),
        "device": r.device,
        "sandbox": {"enabled": r.sandbox.enabled, "warning": r.sandbox.warning},
        **evaluation,
        "memorisation": None if memorisation is None else dataclasses.asdict(memorisation),
        "measured": _measured_json(r.integrity.training),
        "integrity": None if not r.graded else {
            "history_mismatch": [{**dataclasses.asdict(m), "detail": m.sentence()} for m in r.integrity.mismatches],
            "test_set_fit": r.integrity.fit,
            "diagnosis": [d.to_json() for d in r.integrity.diagnosis],
            "applied": dataclasses.asdict(r.integrity.applied) if r.integrity.applied else None},
        "robustness": None if r.robustness is None else r.robustness.to_json(),
        "provenance": {"model": r.model.source},
        "model": r.model.to_json(),
        "history": _plain(r.history),
        "score": r.verdict.score,
        "max_score": r.verdict.max_score,
        "checks": [c.to_dict() for c in r.verdict.checks],
        "flags": list(r.flags),
        "timings": dataclasses.asdict(r.timings),
    }
    return {key: fields[key] for key in RESULT_KEYS}


def _from_json(obj: Any) -> GradeResult:
    if not isinstance(obj, Mapping):
        raise GraderError(f"a results object was expected, got {type(obj).__name__}", _HINT)
    version = obj.get("schema_version")
    if version != SCHEMA_VERSION:
        raise GraderError(f"results schema_version is {version!r}; this grader reads {SCHEMA_VERSION}",
                          "re-grade the submission with this grader version to get a matching results.json")
    try:
        status = Status(obj.get("status"))
    except ValueError:
        raise GraderError(f"results status is {obj.get('status')!r}, not 'graded' or 'error'",
                          "check that the file is a results.json written by grader") from None
    required = ["student", "submission", "checks", "score", "max_score"]
    if status is Status.GRADED:
        required += ["accuracy", "per_class_accuracy", "per_class_precision", "confusion_matrix"]
    missing = [k for k in required if obj.get(k) is None]
    if missing:
        raise GraderError(f"results ({status.value}) lack the keys: {', '.join(missing)}",
                          "see docs/results-schema.md for what each key holds")
    try:
        return _read_fields(obj, status)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:  # a hand-edited value
        raise GraderError(f"results hold a value of the wrong type or shape ({type(exc).__name__}: {exc})",
                          _HINT) from None


def _read_fields(obj: Mapping[str, Any], status: Status) -> GradeResult:
    student = obj["student"]
    submission = dict(obj["submission"])
    model = obj.get("model") or {}
    memorisation = obj.get("memorisation")
    timings = obj.get("timings") or {}
    dataset = dict(obj.get("dataset") or {})
    checks = tuple(_check_result(c) for c in obj["checks"])
    verdict = Verdict(checks=checks, score=float(obj["score"]), max_score=float(obj["max_score"]),
                      passed=bool(checks) and all(c.passed for c in checks),
                      borderline=any(c.borderline for c in checks))
    return GradeResult(
        status=status,
        student=Student(str(student.get("id") or ""), str(student.get("name") or student.get("id") or "")),
        submission=SubmissionFacts(
            path=str(submission.get("path", "")), sha256=submission.get("sha256"), format=submission.get("format"),
            files=tuple(submission.get("files") or ()), manifest=dict(submission.get("manifest") or {}),
            input=submission.get("input"),
            notes=read_notes(tuple(submission.get("notes") or ()), submission.get("notes_detail")),
            history_error=_history_error(submission)),
        dataset=dataset,
        sandbox=SandboxFacts(bool((obj.get("sandbox") or {}).get("enabled")),
                             (obj.get("sandbox") or {}).get("warning")),
        evaluation=_evaluation(obj, dataset) if status is Status.GRADED else None,
        model=ModelFacts(**{k: model.get(k) for k in MODEL_KEYS if k not in ("layers", "blocks")},
                         layers=tuple(model.get("layers") or ()), blocks=dict(model.get("blocks") or {}),
                         source=str((obj.get("provenance") or {}).get("model", "unknown"))),
        integrity=_integrity(obj, memorisation),
        robustness=Robustness.from_json(obj["robustness"]) if obj.get("robustness") else None,
        history=obj.get("history"),
        verdict=verdict,
        # results written before flags were derived at grading lack unofficial-data: derived here too
        flags=_with_run_flags(obj.get("flags") or (), dataset),
        timings=Timings(timings.get("load"), timings.get("inference"), timings.get("total")),
        error=obj.get("error"),
        error_detail=Message.from_json(obj.get("error_detail")),
        device=str(obj.get("device") or "cpu"),
        grader_version=str(obj.get("grader_version") or "?"),
        created=str(obj.get("created") or ""),
    )


def _detail(text: str | None) -> dict | None:
    return text.to_json() if isinstance(text, Message) else None


def _history_error(submission: Mapping[str, Any]) -> str | None:
    """``history_error``, a catalogue message again when ``history_error_detail`` says which."""
    error = submission.get("history_error")
    return None if error is None else read_notes((error,), [submission.get("history_error_detail")])[0]


def _measured_json(training: Measured | None) -> dict | None:
    if training is None:
        return None
    return {"train_accuracy": training.accuracy, "train_accuracy_ci": list(training.accuracy_ci),
            "train_loss": training.loss, "train_loss_ci": list(training.loss_ci), "count": training.count}


def _integrity(obj: Mapping[str, Any], memorisation: Mapping | None) -> Integrity:
    """The integrity facts of a results.json (those written before they existed read as none)."""
    measured = obj.get("measured")
    facts = obj.get("integrity") or {}
    training = None if not measured else Measured(
        float(measured["train_accuracy"]), tuple(measured["train_accuracy_ci"]), float(measured["train_loss"]),
        tuple(measured["train_loss_ci"]), int(measured["count"]))
    mismatches = tuple(Mismatch(m["key"], float(m["claimed"]), float(m["measured"]), float(m["allowed"]))
                       for m in facts.get("history_mismatch") or ())
    diagnosis = tuple(Diagnosis(d["flag"], d["cause"], tuple(d["fix"]), float(d["accuracy"]),
                                tuple(d["accuracy_ci"]), tuple(d.get("also") or ()), convention_of(d.get("convention")))
                      for d in facts.get("diagnosis") or ())
    applied = facts.get("applied")
    return Integrity(None if memorisation is None else Memorisation(**memorisation), training, mismatches,
                     facts.get("test_set_fit"), diagnosis,
                     AppliedFix(float(applied["accuracy_as_handed_in"]), float(applied["penalty"])) if applied else None)


def _evaluation(obj: Mapping[str, Any], dataset: Mapping[str, Any]) -> EvalResult:
    per_class = obj["per_class_accuracy"]
    matrix = [list(row) for row in obj["confusion_matrix"]]
    if len(matrix) != len(per_class) or any(len(row) != len(per_class) for row in matrix):
        raise GraderError(f"results confusion_matrix is not {len(per_class)}x{len(per_class)}, one row and "
                          "column per class of per_class_accuracy", "re-grade the submission to rewrite results.json")
    ci = obj.get("accuracy_ci")
    counts = obj.get("per_class_count") or {}
    return EvalResult(
        accuracy=float(obj["accuracy"]),
        accuracy_ci=tuple(ci) if ci else None,
        loss=obj.get("loss"), top2_accuracy=obj.get("top2_accuracy"), ece=obj.get("ece"),
        per_class_accuracy=dict(per_class), per_class_precision=dict(obj["per_class_precision"]),
        per_class_count=dict(counts), confusion_matrix=matrix,
        confused_pairs=list(obj.get("confused_pairs") or []), samples=list(obj.get("samples") or []),
        confident_wrong=list(obj.get("confident_wrong") or []),
        count=int(dataset.get("test_count") or sum(sum(row) for row in matrix)),
        reliability=list(obj.get("reliability") or []),
    )


def _check_result(c: Mapping[str, Any]) -> CheckResult:
    return CheckResult(name=str(c["name"]), metric=str(c.get("metric") or ""), op=str(c.get("op") or ""),
                       threshold=c.get("threshold"), passed=bool(c.get("passed")), value=c.get("value"),
                       score=float(c.get("score") or 0.0), max_score=float(c.get("max_score") or 0.0),
                       borderline=bool(c.get("borderline")), detail=str(c.get("detail") or ""),
                       name_zh=str(c.get("name_zh") or ""))


def check_condition(check: CheckResult, shown=str) -> str:
    """A check's condition in plain text: as the rubric wrote it ("0.7 < x <= 1"), or, where
    ``op`` is an operator alone, the operator and the threshold ("< 0.5"), the threshold as
    ``shown`` writes it."""
    if "x" in check.op:
        return check.op
    return f"{check.op} {shown(check.threshold if check.threshold is not None else '')}".strip()
