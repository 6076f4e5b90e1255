"""The one exception type that carries a message a user can act on."""

from __future__ import annotations

from grader.messages import Message


class GraderError(Exception):
    """A problem with the user's input, stated so they can fix it.

    The CLI turns it into exit code 2 with ``message`` and ``hint`` printed; grading turns it into
    ``status: error`` in results.json (``error``, and ``error_detail`` when it has a catalogue entry).

    Raised with a catalogue message (``GraderError(say("manifest.not_toml", file=..., reason=...))``)
    its hint is the entry's, and ``detail`` lets a report say both in another language
    (``grader.messages``); raised with plain text it is English only.

    Attributes:
        message: what is wrong, naming the file or value at fault (a Message when from the catalogue).
        hint: what to do about it (may be empty), in English.
        detail: ``message`` when it is a catalogue Message, else None.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        own = message.hint("en") if isinstance(message, Message) else ""
        self.hint = own if hint is None else hint
        # a hint of the raiser's own replaces the entry's, which a translation would then contradict
        self.detail = message if isinstance(message, Message) and self.hint == own else None

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message
