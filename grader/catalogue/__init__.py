"""The message catalogue: every message the grader says to a student, keyed, in English and
Chinese, one module per topic (``grader.messages`` says them).

Nothing here imports from the rest of ``grader``: every layer may say something to a student.
"""

from __future__ import annotations

from grader.catalogue import archives, check_and_batch, code, data, hand_in, history, running
from grader.catalogue.common import Entry

CATALOGUE: dict[str, Entry] = {}
for _part in (hand_in, archives, history, code, running, check_and_batch, data):
    _shared = CATALOGUE.keys() & _part.ENTRIES.keys()
    if _shared:
        raise RuntimeError(f"catalogue keys defined twice: {sorted(_shared)}")
    CATALOGUE.update(_part.ENTRIES)
