"""The class report for TAs: one stated population, shared ranks, names, what needs a look, item
analysis, the summed confusion matrix, and PDF pages that never end on a heading."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from markupsafe import escape

from grader.batch.classreport import STYLE, class_context, render_class_html
from grader.batch.gradebook import Record
from grader.integrity.diagnosis import Diagnosis
from grader.report.i18n import class_report_strings
from grader.results import Integrity, Student
from tests.test_batch import synthetic_results


def graded(student: str, accuracy: float, *, name: str | None = None, flags=(), **changes) -> Record:
    result = synthetic_results(student, accuracy, flags=flags)
    result = result.replace(student=Student(student, name or student), **changes)
    return Record(student, student, "a" * 64, "graded", None, result)


def failed(student: str, status: str = "error", error: str = "not a checkpoint: hand in the .pth file") -> Record:
    return Record(student, student, "b" * 64, status, error, synthetic_results(student, None, error=error))


def test_ties_share_a_rank_and_the_leaderboard_shows_names():
    records = [graded("s1", 0.90, name="李雷"), graded("s2", 0.80), graded("s3", 0.80, name="Hàn Méiméi"),
               graded("s4", 0.75), graded("s5", 0.80), graded("s6", 0.60)]
    ctx = class_context(records, figures=False, style=dataclasses.replace(STYLE, leaderboard_size=2))
    board = [(row["rank"], row["student"], row["name"]) for row in ctx["leaderboard"]]
    # three share rank 2, so a board of two ranks shows four rows; the next would be rank 5
    assert board == [(1, "s1", "李雷"), (2, "s2", ""), (2, "s3", "Hàn Méiméi"), (2, "s5", "")]  # no id twice
    html = render_class_html(records, "en", figures=False)
    assert "李雷" in html and "Hàn Méiméi" in html


def test_every_distribution_is_over_the_graded_and_says_so():
    records = [graded("a", 0.80), graded("b", 0.72), failed("c"), failed("d", "timeout", "took longer than 420 s")]
    ctx = class_context(records, figures=False)
    assert [(row["score"], row["count"]) for row in ctx["score_rows"]] == [("3", 2)]  # no 0 for the ungraded
    assert ctx["mean_score"] == "3"
    assert all(c["total"] == 2 for c in ctx["checks"])
    assert ctx["population"] == class_report_strings("en")["class_population"].format(graded=2, total=4)
    assert [f["student"] for f in ctx["failures"]] == ["c", "d"]
    html = render_class_html(records, "zh", figures=False)
    assert "已评分的 2 份" in html and "took longer than 420 s" in html
    assert "<h1>共 4 份提交</h1>" in html  # a sentence, not "4 提交数"


def test_needs_a_look_lists_flags_in_words_and_diagnoses_with_their_fix():
    diagnosis = Diagnosis("input-convention", "inputs scaled to 0..255, not 0..1", ('scale = 255',), 0.81,
                          (0.79, 0.83))
    records = [graded("ok", 0.85),
               graded("memo", 0.99, flags=["memorisation-suspected"]),
               graded("conv", 0.12, flags=["input-convention"], integrity=Integrity(diagnosis=(diagnosis,))),
               failed("broken")]
    review = {r["student"]: r for r in class_context(records, figures=False)["review"]}
    assert sorted(review) == ["conv", "memo"]
    assert review["memo"]["flags"] == [{"code": "memorisation-suspected",
                                        "text": class_report_strings("en")["flag_memorisation-suspected"]}]
    assert review["conv"]["flags"] == []  # said once, by its diagnosis
    assert review["conv"]["diagnoses"] == [{"cause": "inputs scaled to 0..255, not 0..1", "fix": ["scale = 255"]}]
    html = render_class_html(records, "en", figures=False)
    assert "inputs scaled to 0..255, not 0..1" in html and "<code>scale = 255</code>" in html
    assert html.index('id="needs-a-look"') < html.index('id="scores"')  # what to act on comes first


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_needs_a_look_names_each_student_of_a_similar_pair(lang):
    """Two students handed in one network: each is listed to check, naming the other, and a
    pair with last year's class names where the other comes from."""
    from grader.similarity.rank import Evidence, Found, Member, Pair
    from grader.similarity.words import report_section

    t = class_report_strings(lang)
    copy = Pair(Member("ann", "", "1" * 64), Member("ben", "", "2" * 64), "exact copy", 1.0, Evidence(exact=1.0))
    old = Pair(Member("cat", "", "3" * 64), Member("s2023001", "hw2-2023", "4" * 64), "derived (weights)", 0.99,
               Evidence(as_saved=0.9, aligned=0.99))
    section = report_section(Found([copy, old], None, None, 2), 3, lang)
    records = [graded("ann", 0.8), graded("ben", 0.8), graded("cat", 0.78), graded("dan", 0.75)]
    review = {r["student"]: r["similar"] for r in class_context(records, lang, figures=False,
                                                                 sections={"similarity": section})["review"]}
    assert sorted(review) == ["ann", "ben", "cat"]  # dan is in no pair; s2023001 is not in this class
    kinds = {kind: section["t"][f"sim_kind_{kind}"] for kind in ("exact copy", "derived (weights)")}
    assert review["ann"] == [t["class_similar_to"].format(other="ben", kind=kinds["exact copy"])]
    assert review["ben"] == [t["class_similar_to"].format(other="ann", kind=kinds["exact copy"])]
    origin = section["rows"][1]["b_from"]
    assert origin and review["cat"] == [t["class_similar_to"].format(other=f"s2023001 ({origin})",
                                                                     kind=kinds["derived (weights)"])]
    html = render_class_html(records, lang, figures=False, sections={"similarity": section})
    look = html[html.index('id="needs-a-look"'):html.index('id="scores"')]
    assert str(escape(review["ann"][0])) in look and t["class_nothing_to_review"] not in look
    assert class_context(records, lang, figures=False)["review"] == []  # without the section, nothing to look at


def test_the_zh_class_report_holds_no_english_words():
    """Under zh: check names from the rubric's name_zh, flags and diagnoses in words, statuses and a
    lead-in before each reason; only ids, code (fix lines, in <code>) and the grader's own reasons
    stay as written."""
    from grader.integrity.diagnosis import CONVENTIONS
    from grader.errors import GraderError
    from grader.messages import RAW_LEAD, say
    from tests.test_report import english_words, visible_text

    raw = next(c for c in CONVENTIONS if c.scale == 255 and not c.bgr)
    diagnosis = Diagnosis("input-convention", f"the network expects {raw.name}", tuple(raw.toml_lines()), 0.81,
                          (0.79, 0.83), (), raw)
    reasons = {"broken": "not a checkpoint: hand in the .pth file", "slow": "took longer than the 420 s limit"}
    records = [graded("ok", 0.85), graded("memo", 0.99, flags=["memorisation-suspected", "history-mismatch"]),
               graded("conv", 0.12, flags=["input-convention"], integrity=Integrity(diagnosis=(diagnosis,))),
               failed("broken", "error", reasons["broken"]), failed("slow", "timeout", reasons["slow"])]
    records[0] = dataclasses.replace(records[0], result=records[0].result.replace(verdict=dataclasses.replace(
        records[0].result.verdict, checks=tuple(dataclasses.replace(c, borderline=True)
                                                for c in records[0].result.verdict.checks[:1]))))
    said_again = say("history.missing", file="history.json")  # an error the catalogue holds: said in Chinese
    records.append(Record("cat", "cat", "c" * 64, "error", str(GraderError(said_again)), synthetic_results(
        "cat", None, error=str(GraderError(said_again))).replace(error_detail=said_again)))
    html = render_class_html(records, "zh", figures=False)
    text = visible_text(re.sub(r"<code>.*?</code>", " ", html))
    assert said_again.text("zh") in text and said_again.hint("zh") in text
    for reason in reasons.values():  # no catalogue entry: the grader's English under the catalogue's lead-in
        assert f"{RAW_LEAD['zh']}{reason}" in text
        text = text.replace(reason, " ")
    # beyond ids: grader (the footer) and history (a submission.toml key the catalogue's hint quotes)
    assert english_words(text, {r.student for r in records} | {"grader", "history"}) == set()
    assert "像素值保持 0..255，不做归一化" in text and "超时" in text and "测试准确率高于 70%" in text
    review = {r["student"]: r for r in class_context(records, "zh", figures=False)["review"]}
    assert review["ok"]["borderline"] == [records[0].result.verdict.checks[0].name_zh]
    assert "<code>memorisation-suspected</code>" not in html and "<code>scale = 255</code>" in html
    english = render_class_html(records, "en", figures=False)
    assert "the network expects pixels 0..255, no normalisation" in english
    assert "<code>memorisation-suspected</code>" in english  # a TA reading English gets the flag's name


class _Data:
    """The one thing an error grade needs of its data: the identity it records."""

    def identity(self) -> dict:
        return {"fingerprint": "f" * 64, "official": True, "source": "tree", "source_kind": "image-tree",
                "test_count": 10000}


def test_the_batchs_reasons_are_said_in_the_class_reports_language(tmp_path):
    """A timeout, the memory cap, a killed grading process and results never written: catalogue
    messages the error grade keeps in results.json, so the zh report says them in Chinese."""
    import signal

    from grader import atomic
    from grader.batch.gradebook import read_record
    from grader.batch.pool import MARKER, Job, _outcome_from_exit
    from grader.batch.worker import failed_results
    from grader.messages import say
    from grader.results import write_results
    from grader.rubric import load_rubric
    from tests.test_report import english_words, visible_text

    killed = _outcome_from_exit(-signal.SIGKILL, tmp_path, 1.0, 10.0)
    reasons = {"slow": ("timeout", say("batch.timeout", limit="420")),
               "big": ("memory", say("batch.memory", limit=4096)), "dead": (killed.status, killed.reason)}
    records = []
    for student, (status, reason) in reasons.items():
        folder = tmp_path / student
        job = Job(student, student, tmp_path / f"{student}.pt", "e" * 64, folder)
        write_results(failed_results(job, reason, load_rubric(None), _Data()), folder)
        atomic.write_json(folder / MARKER, {"status": status, "reason": reason})  # as record_outcome writes it
        records.append(read_record(student, student, "e" * 64, folder))
    records.append(read_record("gone", "gone", "f" * 64, tmp_path / "gone"))  # no results.json at all
    text = visible_text(render_class_html(records, "zh", figures=False))
    assert "评分进程被信号 SIGKILL 终止（系统可能内存不足）" in text and "运行时间超过了 420 秒的上限" in text
    assert say("batch.no_results").text("zh") in text
    assert english_words(text, {"slow", "big", "dead", "gone", "grader", "SIGKILL", "MiB"}) == set()
    english = visible_text(render_class_html(records, "en", figures=False))
    assert "took longer than the 420 s limit and was stopped" in english  # the English, as it always read
    assert "killed by SIGKILL (the system may have run out of memory)" in english


def test_item_analysis_and_confusion_reach_the_page():
    records = [graded("a", 0.85), graded("b", 0.71), graded("c", 0.65)]
    e = records[0].result.evaluation
    matrix = [[90 if i == j else 10 if j == (i + 1) % 10 else 0 for j in range(10)] for i in range(10)]
    records = [dataclasses.replace(r, result=r.result.replace(
        evaluation=dataclasses.replace(r.result.evaluation, confusion_matrix=matrix))) for r in records]
    ctx = class_context(records, figures=False)
    test_acc = next(c for c in ctx["checks"] if c["name"] == "test accuracy above 0.7")
    assert (test_acc["passed"], test_acc["total"], test_acc["step"]) == (2, 3, "1 pp")  # -2..+2 count the steps
    assert test_acc["shifts"] == [2, 2, 2, 1, 1]  # 0.71 fails once the bar is x > 0.71
    loss = next(c for c in ctx["checks"] if c["name"] == "final training loss below 0.5")
    assert (loss["discrimination"], loss["no_discrimination"]) == ("n/a", "everyone passed")
    assert loss["step"] == "5% of the bound"  # not a proportion: its bound moves by 5% and 10% of itself
    uneven = dataclasses.replace(STYLE, items=dataclasses.replace(STYLE.items, relative_steps=(0.05, 0.2)))
    loss = next(c for c in class_context(records, figures=False, style=uneven)["checks"] if c["name"] == loss["name"])
    assert loss["step"] == "5 / 20% of the bound"  # steps that are not even are each named
    assert [cell["value"] for cell in ctx["confusion"]["rows"][0]["cells"][:2]] == [90.0, 10.0]  # % of the row
    assert ctx["confusion"]["included"] == 3 and len(e.per_class_accuracy) == 10
    html = render_class_html(records, "en", figures=False)
    assert ">Discrimination<" in html and "everyone passed" in html


def test_optional_sections_are_shown_only_when_given(tmp_path, monkeypatch):
    import jinja2

    from grader.report import render

    records = [graded("a", 0.85)]
    assert 'id="similar' not in render_class_html(records, "en", figures=False)
    (tmp_path / "robustness.html.j2").write_text('<section id="robustness-part">{{ robustness.title }}</section>')
    loader = render.environment().loader
    # a stand-in part, found before the shipped one: the include point is under test, not the part
    env = render.environment().overlay(loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(tmp_path), loader]))
    monkeypatch.setattr(render, "environment", lambda: env)
    html = render_class_html(records, "en", figures=False, sections={"robustness": {"title": "Under corruption"}})
    assert '<section id="robustness-part">Under corruption</section>' in html


def test_pdf_pages_never_end_on_a_heading_and_long_tables_repeat_their_header():
    import pypdf

    from grader.report.render import render_pdf

    records = [graded(f"s{i:02d}", 0.6 + (i % 9) * 0.03, flags=["memorisation-suspected"] if i % 4 == 0 else [])
               for i in range(24)] + [failed(f"f{i:02d}") for i in range(40)]
    pages = [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(render_pdf(
        render_class_html(records, "en", figures=False)))).pages]
    t = class_report_strings("en")
    headings = {t[k] for k in ("class_needs_look", "class_failures", "class_review", "class_scores", "class_checks",
                               "class_confusion", "class_per_class", "class_leaderboard")}
    for number, text in enumerate(pages, 1):
        lines = [line.strip() for line in text.splitlines() if line.strip()][:-1]  # the last is the footer
        assert lines and lines[-1] not in headings, f"page {number} ends on the heading {lines[-1]!r}"
    with_failures = [text for text in pages if "not a checkpoint: hand in" in text]
    assert len(with_failures) >= 2  # the table of the ungraded runs over a page...
    assert all("Student Name Status Reason" in text for text in with_failures)  # ...with its header each time
    assert sum(text.count("not a checkpoint: hand in") for text in pages) == 40


def test_a_note_before_a_rows_reason_is_said_in_the_class_reports_language(tmp_path):
    """Two hand-ins claim one id; the second, graded as ``alice~2``, timed out. Its row's reason
    starts with the note for the TA, in the report's language like the reason after it."""
    from grader import atomic
    from grader.batch.discover import discover_submissions
    from grader.batch.gradebook import read_record
    from grader.batch.pool import MARKER, Job
    from grader.batch.run import _noted
    from grader.batch.worker import failed_results
    from grader.messages import RAW_LEAD, say
    from grader.results import write_results
    from grader.rubric import load_rubric
    from tests.test_batch import make_class
    from tests.test_report import english_words, visible_text

    _, second = discover_submissions(make_class(tmp_path / "subs", {"alice": "0.8", "x/alice": "0.9"}))
    folder, reason = tmp_path / second.slug, say("batch.timeout", limit="420")
    job = Job(second.student, second.slug, second.path, "e" * 64, folder)
    write_results(failed_results(job, reason, load_rubric(None), _Data()), folder)
    atomic.write_json(folder / MARKER, {"status": "timeout", "reason": reason})
    record = _noted(read_record(second.student, second.slug, "e" * 64, folder), second)
    assert record.error == ("x claims the student id 'alice', which alice.pt also claims; graded as 'alice~2': check "
                            "who handed in which; took longer than the 420 s limit and was stopped")  # as it was
    text = visible_text(render_class_html([record], "zh", figures=False))
    assert "x 声明的学号 'alice' 也被 alice.pt 声明了；已按 'alice~2' 评分：请核对这两份作业分别是谁交的；运行时间超过了 420 秒的上限" \
        in text and RAW_LEAD["zh"] not in text
    assert english_words(text, {"alice", "grader"}) == set()
    assert record.error in visible_text(render_class_html([record], "en", figures=False))


def laid_out(html: str):
    """weasyprint's pages of ``html``, laid out for print."""
    import weasyprint

    return weasyprint.HTML(string=html).render().pages


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_item_analysis_fits_the_page_and_names_its_checks_on_a_line_or_two(lang):
    """Beside the long "would pass" header the check's name was squeezed to a word per line."""
    records = [graded(f"s{i}", 0.6 + 0.05 * i) for i in range(3)] + [failed("f1")]
    for page in laid_out(render_class_html(records, lang, figures=False)):
        right = page._page_box.margin_left + page._page_box.width  # the content box's right edge
        for box in page._page_box.descendants():
            if type(box).__name__ == "TableBox" and "item-analysis" in (box.element.get("class") or ""):
                assert box.position_x + box.width <= right + 0.5
                rows = [r for r in box.descendants() if type(r).__name__ == "TableRowBox" and r.element_tag == "tr"]
                names = [r.children[0] for r in rows if r.children and r.children[0].element_tag == "td"]
                assert names
                for cell in names:
                    assert len([d for d in cell.descendants() if type(d).__name__ == "LineBox"]) <= 2


def test_the_per_class_table_is_not_split_across_pages():
    """Ten rows: two of them ended page 2 under the chart, eight began page 3 (zh, three graded)."""
    import pypdf

    from grader.report.render import render_pdf

    records = [graded(f"s{i}", 0.6 + 0.05 * i) for i in range(3)] + [failed("f1")]
    t = class_report_strings("zh")
    header = " ".join(t[k] for k in ("class", "class_mean", "class_median", "class_min", "class_max"))
    pages = [" ".join(page.extract_text().split()) for page in
             pypdf.PdfReader(io.BytesIO(render_pdf(render_class_html(records, "zh")))).pages]
    assert sum(header in text for text in pages) == 1


def test_a_reasons_hint_starts_a_line_of_its_own():
    """The grader's error is 'what went wrong\n  hint: what to do'; the table kept it on one line."""
    import pypdf

    from grader.errors import GraderError
    from grader.messages import say
    from grader.report.render import render_pdf

    said = say("weights.empty", file="model.pth")
    refused = synthetic_results("bob", None, error=str(GraderError(said))).replace(error_detail=said)
    records = [graded("a", 0.8), Record("bob", "bob", "b" * 64, "error", refused.error, refused)]
    text = pypdf.PdfReader(io.BytesIO(render_pdf(render_class_html(records, "en", figures=False)))).pages[0]
    lines = [line.strip() for line in text.extract_text().splitlines()]
    assert any(line.startswith("hint: save the network again") for line in lines), lines
