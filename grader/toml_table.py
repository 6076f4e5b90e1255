"""One table of a TOML configuration (a rubric's ``[limits]``, ``[submission]``, ``[gradescope]``),
checked before its values are: it must be a table, and hold only keys its reader knows."""

from __future__ import annotations

from typing import Sequence

from grader.errors import GraderError


def checked_table(raw: object, name: str, known: Sequence[str], *, source: str, hint: str) -> dict:
    """``raw`` as the ``[name]`` table of the file ``source``.

    Raises:
        GraderError: ``raw`` is not a table (``hint`` says what to write), or it holds a key
            that is not in ``known`` (listed, in that order, as the hint).
    """
    if not isinstance(raw, dict):
        raise GraderError(f"{source}: {name} is not a table", hint)
    bad = set(raw) - set(known)
    if bad:
        raise GraderError(f"{source}: unknown [{name}] key(s) {', '.join(sorted(bad))}", f"known: {', '.join(known)}")
    return raw
