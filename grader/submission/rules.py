"""How every hand-in of a class is read: the rubric's ``[submission]`` table, as the intake sees it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class IntakeRules:
    """How every hand-in of the class is read (a rubric's ``[submission]`` table).

    Attributes:
        weights: the checkpoint to take when a hand-in holds several: a path or glob relative to
            the hand-in (``models/HW2_CNN.pth``, ``*.pth``); a student's own manifest wins.
        model_code: a class-wide Python file that defines the network classes students pickled
            whole (or ``build_model`` for bare state_dicts); absolute, or relative to the rubric.
        trust_reported: let checks read facts the submission's own code reported (parameters,
            MACs, latency: a model.py can rewrite them); by default such a check fails, saying why.
        apply_diagnosis: grade a hand-in whose input convention or output order a diagnosis
            found with that fix applied (the whole test set run again under it), instead of as
            handed in.
        diagnosis_penalty: the share of the points earned that a fixed hand-in loses (0..1).
    """

    weights: str | None = None
    model_code: Path | None = None
    trust_reported: bool = False
    apply_diagnosis: bool = False
    diagnosis_penalty: float = 0.0


INTAKE_KEYS = ("weights", "model_code", "trust_reported", "apply_diagnosis", "diagnosis_penalty")
