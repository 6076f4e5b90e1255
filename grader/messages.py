"""What the grader tells a student, in English and Chinese: one catalogue of keyed templates.

    say(key, **args) -> Message          English text (a str) that knows its key and arguments
    message.text(lang), message.hint(lang)
    Message.from_json(obj, untrusted=...) -> Message | None      None for an unknown or malformed one
    error_for(detail, text, lang) -> Shown   an error for a reader of ``lang``; its English under a
                                             lead-in when it has no catalogue entry

A ``Message`` is the English text itself, so logs, the CLI, results.json's ``error`` and
``notes`` and every test that reads them see what they always saw; the key and arguments travel
beside it (``error_detail``, ``notes_detail``) and a report in another language says it again
from the catalogue. Templates use ``str.format`` fields without format specs: an argument is a
string (a name within the hand-in; a path is shortened to one, as the English text is, by
``GradeResult.student_error_detail``), a number, a tuple of them, or another Message (said in the
reader's language too; ``{x_hint}`` is the hint of a Message argument ``x``).

The catalogue itself is ``grader.catalogue``, one module per topic. Nothing here imports from the
rest of ``grader`` but it: every layer may say something to a student.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from grader.catalogue import CATALOGUE

LANGS = ("en", "zh")
# Shown above an English message that has no catalogue entry, for a reader of another language.
RAW_LEAD = {"en": "", "zh": "评分程序的原始信息（英文）："}
HINT_LABEL = {"en": "hint: ", "zh": "建议："}  # before the hint, where it shares a text with the message
ARG_CHARS = 600  # an argument from the untrusted child longer than this is not accepted
NESTING, LIST_ITEMS = 3, 20  # how deep messages nest, how long a list argument is, when read back


def say(key: str, /, **args: Any) -> "Message":
    """The catalogue's ``key`` said with ``args``: a Message (English text, key and arguments).

    Raises:
        KeyError: ``key`` is not in the catalogue, or an argument its templates use is missing.
    """
    return Message(key, args)


class Message(str):
    """A catalogue message: the English text itself, carrying ``key`` and ``args`` so that it can
    be said in another language. Pickles (and deep-copies) by key and arguments."""

    key: str
    args: Mapping[str, Any]

    def __new__(cls, key: str, args: Mapping[str, Any] | None = None):
        entry = CATALOGUE[key]
        args = dict(args or {})
        self = super().__new__(cls, _fill(entry.en, args, "en", entry.joiners[0]))
        self.key, self.args = key, MappingProxyType(args)
        return self

    def __reduce__(self):
        return Message, (self.key, dict(self.args))

    def text(self, lang: str = "en") -> str:
        """The message in ``lang`` (English for a language the catalogue lacks)."""
        return _fill(_template(self.key, lang, hint=False), self.args, lang, _joiner(self.key, lang))

    def hint(self, lang: str = "en") -> str:
        """What to do about it, in ``lang``; "" when the entry gives no hint."""
        return _fill(_template(self.key, lang, hint=True), self.args, lang, _joiner(self.key, lang))

    def mapped(self, change) -> "Message":
        """The same message with ``change`` applied to every string argument (nested ones too)."""
        return Message(self.key, {name: _mapped(value, change) for name, value in self.args.items()})

    def to_json(self) -> dict:
        """``{"key", "args"}``; a nested Message as the same object, a list argument as a list."""
        return {"key": self.key, "args": {name: _json_arg(value) for name, value in self.args.items()}}

    @classmethod
    def from_json(cls, obj: Any, *, untrusted: bool = False, depth: int = 0) -> "Message | None":
        """The Message ``obj`` (``to_json``'s form) holds, or None when its key is unknown or its
        arguments are not the entry's names with string, number, list or nested-message values
        (nested at most NESTING deep). ``untrusted`` (a note or an error from the sandboxed child):
        strings of at most ARG_CHARS and lists of at most LIST_ITEMS too."""
        if depth > NESTING or not (isinstance(obj, Mapping) and isinstance(obj.get("key"), str)
                                   and obj["key"] in CATALOGUE and isinstance(obj.get("args"), Mapping)):
            return None
        if set(obj["args"]) != CATALOGUE[obj["key"]].fields():
            return None
        args = {}
        for name, value in obj["args"].items():
            if isinstance(value, list) and (not untrusted or len(value) <= LIST_ITEMS):
                value = [_read_arg(item, untrusted, depth) for item in value]
                value = None if any(item is None for item in value) else tuple(value)
            else:
                value = _read_arg(value, untrusted, depth)
            if value is None:
                return None
            args[name] = value
        try:
            return cls(obj["key"], args)
        except (KeyError, ValueError):  # a plain string where the template wants a message's hint
            return None


def _mapped(value: Any, change) -> Any:
    if isinstance(value, Message):
        return value.mapped(change)
    if isinstance(value, (list, tuple)):
        return tuple(_mapped(item, change) for item in value)
    return change(value) if isinstance(value, str) else value


def _json_arg(value: Any) -> Any:
    if isinstance(value, Message):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_json_arg(item) for item in value]
    return value


def _read_arg(value: Any, untrusted: bool, depth: int) -> Any:
    """One argument read back: a nested Message, a string or a finite number; None for anything else."""
    if isinstance(value, Mapping):
        return Message.from_json(value, untrusted=untrusted, depth=depth + 1)
    return value if _plain_arg(value, untrusted) else None


def _plain_arg(value: Any, untrusted: bool) -> bool:
    if isinstance(value, str):
        return not untrusted or len(value) <= ARG_CHARS
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


def _template(key: str, lang: str, *, hint: bool) -> str:
    entry = CATALOGUE[key]
    lang = lang if lang in LANGS else "en"
    return getattr(entry, f"hint_{lang}" if hint else lang)


def _joiner(key: str, lang: str) -> str:
    return CATALOGUE[key].joiners[LANGS.index(lang) if lang in LANGS else 0]


def _fill(template: str, args: Mapping[str, Any], lang: str, joiner: str) -> str:
    values = {}
    for name, value in args.items():
        if isinstance(value, Message):
            values[name], values[f"{name}_hint"] = value.text(lang), value.hint(lang)
        elif isinstance(value, (list, tuple)):
            values[name] = joiner.join(item.text(lang) if isinstance(item, Message) else str(item) for item in value)
        else:
            values[name] = value
    return template.format_map(values)


def rewritten(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced by ``new``, in a Message's arguments too (a Message stays one)."""
    if isinstance(text, Message):
        return text.mapped(lambda value: value.replace(old, new))
    return text.replace(old, new)


@dataclass(frozen=True)
class Shown:
    """A message for one reader: what went wrong, what to do, and a lead-in saying that the text
    is the grader's own English (only for a message without a catalogue entry, in another language)."""

    message: str
    hint: str
    lead: str = ""


def error_for(detail: Message | None, text: str, lang: str) -> Shown:
    """``detail`` said in ``lang``; without one, ``text`` (a GraderError's 'what\\n  hint: do')
    split into what and hint, with ``RAW_LEAD`` for a reader of another language."""
    if detail is not None:
        return Shown(detail.text(lang), detail.hint(lang))
    what, sep, hint = (text or "").partition("hint:")
    return Shown(what.strip(), hint.strip() if sep else "", RAW_LEAD.get(lang, ""))


def error_text(detail: Message | None, text: str, lang: str) -> str:
    """``error_for`` as one text: the lead-in, what went wrong, and the hint on a line of its own
    (in English exactly a GraderError's ``str``)."""
    said_here = error_for(detail, text, lang)
    hint = f"\n  {HINT_LABEL.get(lang, HINT_LABEL['en'])}{said_here.hint}" if said_here.hint else ""
    return f"{said_here.lead}{said_here.message}{hint}"


def said(note: str, lang: str) -> str:
    """A note in ``lang``: a Message said again, other text as written (under ``RAW_LEAD``)."""
    if isinstance(note, Message):
        return note.text(lang)
    return f"{RAW_LEAD.get(lang, '')}{note}"


def notes_detail(notes) -> list[dict | None]:
    """results.json's ``notes_detail``: each note's ``{key, args}``, None for one without an entry."""
    return [note.to_json() if isinstance(note, Message) else None for note in notes]


def read_notes(texts, details, *, untrusted: bool = False) -> tuple[str, ...]:
    """Notes from their English ``texts`` and ``details`` (``notes_detail``, possibly absent or
    from the child): a detail that reads as a Message replaces its text, any other keeps it."""
    details = list(details) if isinstance(details, (list, tuple)) and len(details) == len(texts) else []
    details += [None] * (len(texts) - len(details))
    return tuple(Message.from_json(detail, untrusted=untrusted) or str(text) for text, detail in zip(texts, details))
