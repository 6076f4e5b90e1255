"""Integrity findings worded in a report's language from results.json's numbers (pure)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from grader.integrity.claims import Mismatch
from grader.integrity.diagnosis import CONVENTIONS, Diagnosis, convention_of
from grader.integrity.gate import HISTORY_UNREAD, NOT_BORNE_OUT, REPORTED_FACT
from grader.messages import RAW_LEAD, say
from grader.report import findings
from grader.report.i18n import STRINGS
from grader.results import Integrity
from tests.test_batch import synthetic_results

LATIN_WORD = re.compile(r"\b[A-Za-z]{3,}\b")
ZH_NAMES = {"CIFAR", "ImageNet", "BGR"}  # a data set's name and the channel order's abbreviation


@pytest.mark.parametrize("convention", CONVENTIONS, ids=lambda c: c.name)
def test_every_convention_reads_chinese_and_round_trips_through_its_facts(convention):
    diagnosis = Diagnosis("input-convention", "as recorded", (), 0.8, (0.7, 0.9), (), convention)
    words = findings.cause(diagnosis, STRINGS["zh"])
    assert set(LATIN_WORD.findall(words)) <= ZH_NAMES, words
    assert findings.cause(diagnosis, STRINGS["en"]).startswith("the network expects pixels 0..")
    assert convention_of(convention.facts()) == convention
    assert convention_of({**convention.facts(), "normalisation": "other"}) is None


def test_a_finding_the_numbers_cannot_word_is_shown_as_recorded():
    odd = Mismatch("val_acc", 0.99, 0.5, 0.6)  # a hand-edited key
    assert findings.mismatch(odd, STRINGS["zh"]) == odd.sentence()
    old = Diagnosis("input-convention", "the network expects something", (), 0.8, (0.7, 0.9))
    assert findings.cause(old, STRINGS["zh"]) == "the network expects something"


def test_the_reasons_integrity_gives_a_withheld_check_read_in_the_reports_language():
    claim = Mismatch("test_acc", 0.99, 0.62, 0.7)
    result = synthetic_results("ada", 0.62).replace(integrity=Integrity(mismatches=(claim,)))
    result = result.replace(submission=dataclasses.replace(result.submission, history_error="history.csv: no epochs"))
    zh = STRINGS["zh"]
    assert findings.check_reason(NOT_BORNE_OUT.format(finding=claim.sentence()), result, zh, "zh").startswith(
        "该声明与实测不符：训练日志声称最后一轮的测试准确率为 99.00%")
    assert findings.check_reason(REPORTED_FACT, result, zh, "zh") == zh["integrity_reason_reported"]
    # a history error read back from results.json is the grader's English, said under the catalogue's lead-in
    assert findings.check_reason(HISTORY_UNREAD.format(error="history.csv: no epochs"), result, zh, "zh") == \
        f"未能读取提交的训练日志：{RAW_LEAD['zh']}history.csv: no epochs"
    assert findings.check_reason("0.62 fails x > 0.7", result, zh, "zh") is None  # not integrity's: left as written
    assert findings.check_reason(REPORTED_FACT, result, STRINGS["en"], "en") == REPORTED_FACT
    unparsable = say("history.unparsable", file="history.csv", reason="line 3")  # as a grade holds it
    fresh = result.replace(submission=dataclasses.replace(result.submission, history_error=unparsable))
    assert findings.check_reason(HISTORY_UNREAD.format(error=unparsable), fresh, zh, "zh") == \
        "未能读取提交的训练日志：无法读取 history.csv：line 3"


def test_every_flag_a_grade_can_raise_is_described_in_both_languages():
    from grader import results

    flags = [value for name, value in vars(results).items() if name.endswith("_FLAG")]
    assert "diagnosis-applied" in flags and len(flags) >= 7
    for lang in ("en", "zh"):
        assert [f for f in flags if not STRINGS[lang].get(f"flag_{f}")] == [], lang
