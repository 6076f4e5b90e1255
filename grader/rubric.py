"""The rubric: a TOML file of checks on any metric in results.json, turned into a Verdict.

    load_rubric(path | None) -> Rubric         (None: the homework's own assertions)
    check(metrics, rubric) -> Verdict          (pure; metrics: grader.results.metrics(result))

The format is documented in docs/grading.md; the default lives in grader/rubrics/default.toml.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Mapping

from grader.errors import GraderError
from grader.evaluate import wilson_interval
from grader.limits import LIMIT_FLOORS, LIMIT_HINTS, LIMIT_KEYS, Limits
from grader.metric_names import AGGREGATES, metric_problem
from grader.platforms.rules import GradescopeRules, parse_gradescope_rules
from grader.submission.rules import INTAKE_KEYS, IntakeRules
from grader.toml_table import checked_table

CHECK_KEYS = {"name", "name_zh", "metric", "condition", "points", "floor", "target", "public"}
ALIASES = {  # the homework's names: train_* come from the student's log, test_acc is measured here
    "train_loss": "history.train_loss",
    "train_acc": "history.train_acc",
    "test_acc": "accuracy",
    "parameters": "model.parameters",
    "macs": "model.macs_per_image",
}
# A claim no history makes is checked on what the network does instead (eval mode, on a secret
# subset of training images); a history handed in is checked as claimed, and a claim it makes
# but cannot back (unreadable, or better than the network does) fails.
MEASURED_INSTEAD = {"history.train_loss": "measured.train_loss", "history.train_acc": "measured.train_accuracy"}
# A check's detail when its value was measured because no history claimed one (reports look for it).
MEASURED_NOTE = "no history handed in: measured on training images"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CONDITION = re.compile(rf"^\s*(?:(?P<lo>{_NUMBER})\s*(?P<lo_op><=|<)\s*)?x\s*"
                        rf"(?:(?P<hi_op><=|<|>=|>)\s*(?P<hi>{_NUMBER}))?\s*$")


@dataclass(frozen=True)
class Check:
    """One rubric line.

    Attributes:
        name: shown to students and TAs.
        name_zh: the name in Chinese reports (``--lang zh``); empty: ``name`` there too.
        metric: a dotted path into results.json (``accuracy``, ``history.train_loss``,
            ``per_class_accuracy.min``, ``model.parameters``...); lists give their last value
            unless an aggregate (min, max, mean, first, last) follows.
        condition: the test as written, e.g. ``"0.7 < x <= 1"``.
        lower, upper: the bounds (None: unbounded); ``*_inclusive`` says whether equality passes.
        points: earned when the condition holds (without partial credit).
        floor, target: partial credit: ``points * clamp((value - floor) / (target - floor), 0, 1)``;
            works in either direction (floor > target for a lower-is-better metric).
        public: False hides the check from the students' ``grader check``.
    """

    name: str
    metric: str
    condition: str
    lower: float | None = None
    lower_inclusive: bool = False
    upper: float | None = None
    upper_inclusive: bool = False
    points: float = 1.0
    floor: float | None = None
    target: float | None = None
    public: bool = True
    name_zh: str = ""

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the condition (bounds inclusive or not as written)."""
        if self.lower is not None and not (value >= self.lower if self.lower_inclusive else value > self.lower):
            return False
        if self.upper is not None and not (value <= self.upper if self.upper_inclusive else value < self.upper):
            return False
        return True

    @property
    def threshold(self) -> float | list[float] | None:
        """The single bound, or ``[lower, upper]`` for a two-sided condition."""
        if self.lower is not None and self.upper is not None:
            return [self.lower, self.upper]
        return self.lower if self.lower is not None else self.upper


@dataclass(frozen=True)
class Rubric:
    """Checks, the per-submission resource limits, the intake rules and the Gradescope rules.
    ``source``: the file it came from."""

    checks: tuple[Check, ...]
    limits: Limits = Limits()
    source: str = "default"
    intake: IntakeRules = IntakeRules()
    gradescope: GradescopeRules = GradescopeRules()

    @property
    def max_score(self) -> float:
        """The points of all checks together."""
        return float(sum(c.points for c in self.checks))

    def public(self) -> "Rubric":
        """The rubric students see (``public = false`` checks removed)."""
        return replace(self, checks=tuple(c for c in self.checks if c.public))

    def visibility(self) -> dict[str, bool]:
        """Check name -> whether students see it before grades are published."""
        return {c.name: bool(c.public) for c in self.checks}

    def with_model_code(self, path: str | Path | None) -> "Rubric":
        """This rubric with ``path`` as its class-wide model code (``--model-code``); None keeps it.

        Raises:
            GraderError: when ``path`` is not a readable file.
        """
        if path is None:
            return self
        return replace(self, intake=replace(self.intake, model_code=_model_code(Path(path), "--model-code")))


@dataclass(frozen=True)
class CheckResult:
    """One check applied to one results dict. Fields as in results.json's ``checks``."""

    name: str
    metric: str
    op: str
    threshold: float | list[float] | None
    passed: bool
    value: float | None
    score: float
    max_score: float
    borderline: bool
    detail: str
    name_zh: str = ""

    def to_dict(self) -> dict:
        """The fields as results.json's ``checks`` entries hold them (``name_zh`` only when given)."""
        fields = dict(vars(self))
        if not self.name_zh:
            del fields["name_zh"]
        return fields


@dataclass(frozen=True)
class Verdict:
    """The rubric's verdict on one submission.

    Attributes:
        checks: each check's result, rubric order.
        score, max_score: points earned and available.
        passed: every check passed.
        borderline: some check's value lies within the measurement's 95% interval of its bound.
    """

    checks: tuple[CheckResult, ...] = field(default_factory=tuple)
    score: float = 0.0
    max_score: float = 0.0
    passed: bool = False
    borderline: bool = False


# --- loading ---------------------------------------------------------------------------------


def default_rubric_path() -> Path:
    """The shipped default rubric: the homework's own three assertions."""
    return Path(str(resources.files("grader") / "rubrics" / "default.toml"))


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read a rubric file; None reads the default (the homework's own assertions).

    Raises:
        GraderError: naming the file and the check at fault.
    """
    path = Path(path) if path is not None else default_rubric_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # -sig: Windows Notepad's BOM
    except FileNotFoundError:
        raise GraderError(f"rubric {path} does not exist", "pass --rubric with an existing rubric.toml") from None
    except OSError as exc:  # a folder, no permission, an I/O error
        raise GraderError(f"rubric {path} cannot be read: {exc.strerror or exc}",
                          "pass --rubric with a readable rubric.toml file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GraderError(f"rubric {path} is not valid TOML: {exc}", "see docs/grading.md") from None
    return parse_rubric(data, source=str(path))


def parse_rubric(data: dict, *, source: str = "<rubric>") -> Rubric:
    """A Rubric from parsed TOML (``[limits]``, ``[submission]``, ``[gradescope]`` and ``[[check]]`` tables)."""
    unknown = set(data) - {"limits", "check", "submission", "gradescope"}
    if unknown:
        raise GraderError(f"{source}: unknown table(s) {', '.join(sorted(unknown))}",
                          "a rubric holds [limits], [submission], [gradescope] and [[check]] tables only")
    raw_limits = checked_table(data.get("limits", {}), "limits", sorted(LIMIT_KEYS), source=source,
                               hint="write [limits] with wall_seconds, memory_mb below it")
    for key, value in raw_limits.items():
        if not _is_number(value) or value < LIMIT_FLOORS[key]:
            raise GraderError(f"{source}: [limits] {key} must be a number of at least {LIMIT_FLOORS[key]}, "
                              f"got {value!r}", LIMIT_HINTS[key])
    limits = Limits(wall_seconds=float(raw_limits.get("wall_seconds", Limits.wall_seconds)),
                    memory_mb=int(raw_limits.get("memory_mb", Limits.memory_mb)))
    checks = data.get("check", [])
    if not isinstance(checks, list) or not checks:
        raise GraderError(f"{source} has no checks", "add at least one [[check]] table")
    return Rubric(tuple(_parse_check(c, i, source) for i, c in enumerate(checks, 1)), limits, source,
                  _parse_intake(data.get("submission", {}), source),
                  parse_gradescope_rules(data.get("gradescope", {}), source))


def _parse_intake(raw: object, source: str) -> IntakeRules:
    raw = checked_table(raw, "submission", INTAKE_KEYS, source=source,
                        hint='write [submission] with weights = "..." or model_code = "..." below it')
    for key, value in raw.items():
        if key in ("trust_reported", "apply_diagnosis"):
            if not isinstance(value, bool):
                raise GraderError(f"{source}: [submission] {key} must be true or false, got {value!r}")
        elif key == "diagnosis_penalty":
            if not _is_number(value) or not 0 <= value <= 1:
                raise GraderError(f"{source}: [submission] diagnosis_penalty must be a number from 0 to 1, "
                                  f"got {value!r}", "the share of the points a fixed hand-in loses, e.g. 0.2")
        elif not isinstance(value, str) or not value.strip():
            raise GraderError(f"{source}: [submission] {key} must be a non-empty string, got {value!r}",
                              'e.g. weights = "models/HW2_CNN.pth", model_code = "net.py"')
    model_code = raw.get("model_code")
    if model_code is not None:
        base = Path(source).parent if source not in ("default", "<rubric>") else Path.cwd()
        model_code = _model_code(base / model_code, f"{source}: [submission] model_code")
    if "diagnosis_penalty" in raw and not raw.get("apply_diagnosis"):
        raise GraderError(f"{source}: [submission] diagnosis_penalty is set but apply_diagnosis is not",
                          "add apply_diagnosis = true, or remove diagnosis_penalty")
    return IntakeRules(weights=raw.get("weights"), model_code=model_code,
                       trust_reported=raw.get("trust_reported", False),
                       apply_diagnosis=raw.get("apply_diagnosis", False),
                       diagnosis_penalty=float(raw.get("diagnosis_penalty", 0.0)))


def _model_code(path: Path, where: str) -> Path:
    if not path.is_file():
        raise GraderError(f"{where} {path} is not a file", "name the Python file that defines the students' "
                                                            "network class (class Net(nn.Module): ...)")
    if path.suffix not in (".py", ".ipynb"):
        raise GraderError(f"{where} {path} is not a .py or .ipynb file", "name the Python file with the class")
    return path.resolve()


def _parse_check(raw: dict, number: int, source: str) -> Check:
    where = f"{source}: check {number}"
    if not isinstance(raw, dict):
        raise GraderError(f"{where} is not a table (found {type(raw).__name__})",
                          'write each check as a [[check]] table with metric and condition')
    unknown = set(raw) - CHECK_KEYS
    if unknown:
        raise GraderError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                          f"known: {', '.join(sorted(CHECK_KEYS))}")
    for key in ("metric", "condition"):
        if not isinstance(raw.get(key), str):
            raise GraderError(f"{where}: {key} is missing or not a string", 'e.g. condition = "0.7 < x <= 1"')
    _check_metric(raw["metric"], where)
    match = _CONDITION.match(raw["condition"])
    if not match or (match["lo"] is None and match["hi"] is None):
        raise GraderError(f'{where}: condition "{raw["condition"]}" is not understood',
                          'write it with x for the value: "x < 0.5", "x >= 0.7", "0.7 < x <= 1"')
    lower = float(match["lo"]) if match["lo"] else None
    lower_inclusive = match["lo_op"] == "<="
    upper = upper_inclusive = None
    if match["hi_op"] in ("<", "<="):
        upper, upper_inclusive = float(match["hi"]), match["hi_op"] == "<="
    elif match["hi_op"] in (">", ">="):
        if lower is not None:
            raise GraderError(f'{where}: condition "{raw["condition"]}" bounds x from below twice',
                              'write a range as "low < x <= high"')
        lower, lower_inclusive = float(match["hi"]), match["hi_op"] == ">="
    if lower is not None and upper is not None and (lower > upper or (lower == upper and not (
            lower_inclusive and upper_inclusive))):
        raise GraderError(f'{where}: condition "{raw["condition"]}" holds for no value',
                          'write a range low to high: "0.7 < x <= 1"')
    points = raw.get("points", 1.0)
    if not _is_number(points) or points < 0:
        raise GraderError(f"{where}: points must be a number >= 0, got {points!r}")
    floor, target = raw.get("floor"), raw.get("target")
    if (floor is None) != (target is None) or (floor is not None and (
            not _is_number(floor) or not _is_number(target) or floor == target)):
        raise GraderError(f"{where}: partial credit needs both floor and target, two different numbers",
                          "e.g. floor = 0.6, target = 0.8: no points at 0.6, all at 0.8")
    if not isinstance(raw.get("public", True), bool):
        raise GraderError(f"{where}: public must be true or false")
    if not isinstance(raw.get("name_zh", ""), str):
        raise GraderError(f"{where}: name_zh must be a string", 'e.g. name_zh = "测试准确率高于 70%"')
    return Check(
        name=str(raw.get("name") or f"{raw['metric']}: {raw['condition']}"),
        metric=raw["metric"], condition=raw["condition"].strip(),
        lower=lower, lower_inclusive=lower_inclusive, upper=upper, upper_inclusive=bool(upper_inclusive),
        points=float(points), floor=None if floor is None else float(floor),
        target=None if target is None else float(target), public=raw.get("public", True),
        name_zh=raw.get("name_zh", "").strip(),
    )


def _check_metric(metric: str, where: str) -> None:
    """Refuse a metric that no result can hold (a typo would fail the check for every student)."""
    problem = metric_problem(ALIASES.get(metric, metric))
    if problem:
        message, hint = problem
        raise GraderError(f"{where}: {message}", f"{hint}; or an alias: {', '.join(ALIASES)}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- checking --------------------------------------------------------------------------------


def check(metrics: Mapping[str, float], rubric: Rubric, *, not_graded: str | None = None,
          reasons: Mapping[str, str] | None = None) -> Verdict:
    """Apply every check of ``rubric`` to a result's metrics (``grader.results.metrics``). Pure.

    Args:
        metrics: dotted metric name -> value (``grader.metric_names``).
        not_graded: why the submission could not be graded: every check fails, saying so.
        reasons: why a metric (by its name, or every one under a first part) is missing, when the
            caller knows better than ``missing_reason`` (``{"history": "history.csv holds keys step,
            lr: ..."}``, ``{"model.parameters": "reported by the submission's own code"}``). A
            history metric with no reason and no value falls back to its measured counterpart
            (``MEASURED_INSTEAD``).

    A metric the mapping lacks fails its check with a detail saying why.
    """
    outcomes = tuple(apply_check(c, metrics, not_graded=not_graded, reasons=reasons) for c in rubric.checks)
    return Verdict(
        checks=outcomes,
        score=float(sum(o.score for o in outcomes)),
        max_score=rubric.max_score,
        passed=all(o.passed for o in outcomes),
        borderline=any(o.borderline for o in outcomes),
    )


def apply_check(c: Check, metrics: Mapping[str, float], *, not_graded: str | None = None,
                reasons: Mapping[str, str] | None = None) -> CheckResult:
    """One check on one result's metrics (``reasons`` as for ``check``)."""
    def failed(detail: str, value=None) -> CheckResult:
        return CheckResult(c.name, c.metric, c.condition, c.threshold, False, value, 0.0, c.points, False, detail,
                           c.name_zh)

    if not_graded is not None:
        return failed(f"not graded: {not_graded or 'the submission could not be graded'}")
    name = ALIASES.get(c.metric, c.metric)
    value, why_missing, source = metrics.get(name), _reason(reasons, name), ""
    if value is None and why_missing is None and metrics.get(MEASURED_INSTEAD.get(name, "")) is not None:
        value, source = metrics[MEASURED_INSTEAD[name]], f" ({MEASURED_NOTE})"
    if value is None:
        return failed(why_missing or missing_reason(c.metric, name))
    passed = c.holds(value)
    if c.floor is not None:
        fraction = min(1.0, max(0.0, (value - c.floor) / (c.target - c.floor)))
        score = c.points * fraction
    else:
        score = c.points if passed else 0.0
    borderline = is_borderline(c, value, metrics)
    detail = f"{_fmt(value)} {'satisfies' if passed else 'fails'} {c.condition}{source}"
    if borderline:
        detail += " (borderline: within the 95% interval of the measurement)"
    return CheckResult(c.name, c.metric, c.condition, c.threshold, passed, value, score, c.points,
                       borderline, detail, c.name_zh)


def _reason(reasons: Mapping[str, str] | None, name: str) -> str | None:
    """The caller's reason for a missing ``name``: for the name itself, else for its first part."""
    reasons = reasons or {}
    return reasons.get(name) or reasons.get(name.split(".")[0])


def missing_reason(metric: str, name: str) -> str:
    """Why a result has no value for ``metric`` (``name``: the alias resolved), said for a student."""
    if name.startswith("history."):
        return ("no training history: add history = \"history.json\" to submission.toml "
                "with per-epoch train_loss, train_acc, test_acc")
    return f"{metric} is not available for this submission"


def is_borderline(c: Check, value: float, metrics: Mapping[str, float]) -> bool:
    """True when a bound of ``c`` lies inside the 95% Wilson interval of a test-set proportion.

    Only proportions measured here on the test set have an interval (accuracy, top-2, per-class);
    a bound at 0 or 1 is never borderline (a perfect score is not uncertain about being <= 1).
    """
    n = _sample_size(ALIASES.get(c.metric, c.metric), metrics)
    if not n:
        return False
    lo, hi = wilson_interval(round(value * n), n)
    return any(b is not None and 0.0 < b < 1.0 and lo <= b <= hi for b in (c.lower, c.upper))


def _sample_size(name: str, metrics: Mapping[str, float]) -> int | None:
    path = name.split(".")
    if path[0] in ("accuracy", "top2_accuracy") and len(path) == 1:
        count = metrics.get("dataset.test_count")
    elif path[0] == "per_class_accuracy" and len(path) == 2:
        # an aggregate over classes: the smallest class, the widest interval
        count = metrics.get(f"per_class_count.{'min' if path[1] in AGGREGATES else path[1]}")
    else:
        return None
    return int(count) if count else None


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
