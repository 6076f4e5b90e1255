"""Every word a report shows, in English and Chinese, one table a module: ``labels`` (shared, and
one submission's report), ``submission`` (its layout), ``integrity``, ``class_report``,
``platforms``, ``similarity``, ``robustness``.

    strings(lang) -> dict[str, str]                labels and headings of one submission's report
    class_report_strings(lang) -> dict[str, str]   those plus the class report's own
    platform_strings(lang) -> dict[str, str]       those plus the Gradescope output's and the notebook's
    similarity_strings(lang), robustness_strings(lang) -> dict[str, str]     those sections' words
    class_name(name, lang) -> str                  CIFAR-10 class names, translated where known

Templates read labels as ``t.<key>``; a key missing from one language is a test failure
(tests/test_report.py compares the key sets), never a silent English fallback.
"""

from __future__ import annotations

from grader.errors import GraderError
from grader.report.i18n.class_report import CLASS_REPORT_STRINGS
from grader.report.i18n.integrity import INTEGRITY_STRINGS
from grader.report.i18n.labels import STRINGS
from grader.report.i18n.platforms import PLATFORM_STRINGS
from grader.report.i18n.robustness import ROBUSTNESS_STRINGS
from grader.report.i18n.similarity import SIMILARITY_STRINGS
from grader.report.i18n.submission import SUBMISSION_REPORT_STRINGS

LANGS = ("en", "zh")
for _lang in LANGS:  # one table for a submission's report: its layout's and integrity's words too
    STRINGS[_lang].update(SUBMISSION_REPORT_STRINGS[_lang])
    STRINGS[_lang].update(INTEGRITY_STRINGS[_lang])


def similarity_strings(lang: str) -> dict[str, str]:
    """The "Similar pairs" section's words for ``lang``.

    Raises:
        GraderError: when ``lang`` is not one of LANGS.
    """
    strings(lang)  # refuses an unknown lang
    return SIMILARITY_STRINGS[lang]


CLASS_NAMES_ZH = {
    "airplane": "飞机", "automobile": "汽车", "bird": "鸟", "cat": "猫", "deer": "鹿",
    "dog": "狗", "frog": "青蛙", "horse": "马", "ship": "船", "truck": "卡车",
}


def strings(lang: str) -> dict[str, str]:
    """The label table for ``lang``.

    Raises:
        GraderError: when ``lang`` is not one of LANGS.
    """
    if lang not in STRINGS:
        raise GraderError(f"unknown report language {lang!r}", f"use one of: {', '.join(LANGS)}")
    return STRINGS[lang]


def class_report_strings(lang: str) -> dict[str, str]:
    """The shared label table plus the class report's own, for ``lang``.

    Raises:
        GraderError: when ``lang`` is not one of LANGS.
    """
    merged = dict(strings(lang))
    merged.update(CLASS_REPORT_STRINGS[lang])
    return merged


def class_name(name: str, lang: str) -> str:
    """``name`` in ``lang``; a class the table does not know keeps its own name."""
    return CLASS_NAMES_ZH.get(name, name) if lang == "zh" else name


def platform_strings(lang: str) -> dict[str, str]:
    """The shared label table plus the Gradescope output's and the notebook result's, for ``lang``.

    Raises:
        GraderError: when ``lang`` is not one of LANGS.
    """
    return {**strings(lang), **PLATFORM_STRINGS[lang]}  # strings() refuses an unknown lang first


def robustness_strings(lang: str) -> dict[str, str]:
    """The "Robustness" section's words for ``lang``.

    Raises:
        GraderError: when ``lang`` is not one of LANGS.
    """
    strings(lang)  # refuses an unknown lang
    return ROBUSTNESS_STRINGS[lang]
