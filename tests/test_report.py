"""Reports: HTML and PDF of one submission, checked with real tools.

PDF text comes from poppler's pdftotext, page counts from pdfinfo, and the HTML is loaded in
headless Chromium over the DevTools protocol (a pipe, no extra packages) to catch failed
resources and console errors. Tests that need a missing tool skip and say which.

Golden HTML lives in tests/golden/. After an intended change to templates or context, update it:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_report.py -k golden

and review the diff (`git diff tests/golden`) before committing.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from markupsafe import escape

from grader.data import CLASSES
from grader.errors import GraderError
from grader.messages import RAW_LEAD, say
from grader.report import render_pdf
from grader.report import render_html as render_result
from grader.report import write_report as write_result_report
from grader.results import GradeResult
from grader.report.i18n import CLASS_NAMES_ZH, CLASS_REPORT_STRINGS, STRINGS

FIXTURES = Path(__file__).parent / "fixtures"


def render_html(obj: dict, **kwargs) -> str:
    """The report of a results.json object (the fixtures are what grader writes to disk)."""
    return render_result(GradeResult.from_json(obj), **kwargs)


def write_report(obj: dict, out_dir: Path, **kwargs) -> list[Path]:
    return write_result_report(GradeResult.from_json(obj), out_dir, **kwargs)
GOLDEN = Path(__file__).parent / "golden"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdfinfo"),
                                   reason="poppler-utils (pdftotext, pdfinfo) is not installed")


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"results_{name}.json").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def fixture_html(name: str, lang: str = "en") -> str:
    """The report of a fixture, rendered once per test session (rendering is pure)."""
    return render_html(load(name), lang=lang)


@pytest.fixture(scope="module")
def graded() -> dict:
    return load("graded")


@pytest.fixture(scope="module")
def error() -> dict:
    return load("error")


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory, graded, error) -> dict[str, Path]:
    """The three reports written once per module: graded en, graded zh, error en."""
    root = tmp_path_factory.mktemp("reports")
    out = {}
    for key, results, lang in (("en", graded, "en"), ("zh", graded, "zh"), ("error", error, "en")):
        html_path, pdf_path = write_report(results, root / key, lang=lang)
        out[key] = pdf_path
        out[key + "_html"] = html_path
    return out


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def pdf_page_texts(path: Path) -> list[str]:
    """The text of each page, as pypdf reads it."""
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(path).pages]


# --- the label tables ------------------------------------------------------------------------


def test_every_label_exists_in_both_languages():
    assert set(STRINGS["en"]) == set(STRINGS["zh"])
    assert set(CLASS_REPORT_STRINGS["en"]) == set(CLASS_REPORT_STRINGS["zh"])


def test_zh_labels_are_chinese_where_english_is_words():
    han = re.compile(r"[\u4e00-\u9fff]")
    untranslated = [k for k, v in STRINGS["zh"].items()
                    if re.search(r"[A-Za-z]{3}", STRINGS["en"][k]) and not han.search(v)
                    and k not in ("html_lang", "sha256", "pages_suffix")]
    assert untranslated == []


# --- HTML -------------------------------------------------------------------------------------


def test_html_is_self_contained(graded):
    html = fixture_html("graded")
    assert "<script" not in html
    for url in re.findall(r'(?:src|href)="([^"]*)"', html) + re.findall(r"url\(([^)]*)\)", html):
        assert url.startswith("data:"), url
    # curves, per-class bars, reliability diagram, then the thumbnails
    assert html.count('src="data:image/png;base64,') == 3 + len(graded["samples"]) + len(graded["confident_wrong"])


def test_html_holds_the_sections_in_the_issues_order(graded):
    html = fixture_html("graded")
    ids = re.findall(r'<section id="([^"]+)"', html)
    # the verdict first, then what was measured, the curves after the samples
    assert ids == ["verdict", "details", "metrics", "per-class", "confusion", "samples", "training", "model"]
    verdict = html[html.index('<section id="verdict"'):html.index('<section id="details"')]
    assert "Lin Mei" not in verdict and html.index("Lin Mei") < html.index('<section id="verdict"')
    assert "What to fix" in verdict and "worst-class recall: 46.60%, needs x ≥ 50%" in verdict
    assert html.index("What to fix") < html.index(graded["submission"]["sha256"])
    assert "Lin Mei" in html and graded["submission"]["sha256"] in html
    assert "71.95%" in html and "c10-4f1e9a2b7d3c" in html
    for name in CLASSES:
        assert f">{name}<" in html


def test_wrong_predictions_are_marked_by_symbol_not_only_colour(graded):
    html = fixture_html("graded")
    wrong = sum(not s["correct"] for s in graded["samples"]) + len(graded["confident_wrong"])
    assert html.count('class="thumb wrong"') == wrong
    assert len(re.findall(r"<figcaption>[^<\n]+\n✗ ", html)) == wrong
    assert "✗ fail" in html and "⚠ borderline" in html  # failed + borderline rubric checks


def test_confusion_counts_and_pairs_are_text(graded):
    html = fixture_html("graded")
    table = re.search(r'<table class="heatmap">.*?</table>', html, re.S).group(0)
    cells = [int(v) for v in re.findall(r">(\d+)</td>", table)]
    assert cells == [v for row in graded["confusion_matrix"] for v in row]
    assert "<td>cat → dog</td><td class=\"num\">350<" in html
    # each cell's colours by its class, from one rule per colour in the page's style
    from grader.report.figures import heatmap_cells

    expected = [c for row in heatmap_cells(graded["confusion_matrix"]) for c in row]
    assert re.findall(r'<td class="num h([0-9a-f]{6})', table) == [c["bg"][1:] for c in expected]
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    rules = dict(re.findall(r"td\.h([0-9a-f]{6}) \{ background: #\1; color: (#[0-9a-f]{6}); \}", style))
    assert {c["bg"][1:]: c["fg"] for c in expected} == rules


def test_render_is_deterministic(graded):
    assert render_html(graded) == render_html(copy.deepcopy(graded))


def test_sandbox_warning_and_flags_are_shown():
    results = load("graded")
    results["sandbox"] = {"enabled": False, "warning": "bubblewrap is missing; ran with --no-sandbox"}
    results["flags"] = ["no-sandbox", "memorisation-suspected", "something-new", "unofficial-data"]
    results["dataset"]["official"] = False
    html = render_html(results)
    assert "bubblewrap is missing; ran with --no-sandbox" in html
    assert "⚠ DISABLED" in html and "NOT the official release" in html
    for flag in ("no-sandbox", "memorisation-suspected", "something-new", "unofficial-data"):
        assert f"<code>{flag}</code>" in html


def test_hostile_strings_stay_text(tmp_path):
    """A student name, image or class name from a results file cannot inject markup or break the
    CSS footer."""
    results = load("graded")
    results["student"]["name"] = 'Bob\\"; } body { display: none } </style><script>alert(1)</script>'
    results["samples"][0]["png"] = '"><script>alert(2)</script>'
    results["model"]["layers"][0]["name"] = "b.0.conv"  # a block whose class a student named
    results["model"]["blocks"] = {"b.0": "<script>alert(3)</script>"}
    html = render_html(results)
    assert "<script" not in html and html.count("</style>") == 1
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert html.count('<div class="no-image">') == 1
    footer = re.search(r"@bottom-left \{ content: \"(.*?)\"; \}", html).group(1)
    assert '"' not in footer and "<" not in footer and "}" not in footer


def test_missing_history_and_layers_drop_their_parts():
    results = load("graded")
    results["history"] = None
    results["model"]["layers"] = []
    html = render_html(results)
    assert 'id="training"' not in html
    assert str(escape(STRINGS["en"]["no_layers"])) in html


def test_partial_history_renders():
    results = load("graded")
    results["history"] = {"test_acc": [0.3, 0.5, 0.45]}
    assert "epoch 2" in render_html(results)


def test_error_result_renders_its_own_report(error):
    html = fixture_html("error")
    assert re.findall(r'<section id="([^"]+)"', html) == ["verdict", "details"]
    assert 'id="error"' in html and html.index('id="error"') < html.index('<table class="checks">')
    # the error and what to do once each, not again in every check's row
    assert html.count("is a pickled module, which the grader never unpickles") == 1
    assert html.count("save the weights with torch.save") == 1
    assert "not graded:" not in html and "What to do" in html


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_error_report_does_not_say_its_checks_failed(error, lang):
    """No check ran on a hand-in that could not be graded: "3 of 3 checks failed" beside the
    error box said they had, and failed."""
    html = render_html(error, lang=lang)
    verdict = html[html.index('<section id="verdict"'):html.index('id="error"')]
    failed = STRINGS[lang]["some_failed"].format(n=3, total=3)
    assert failed not in html and STRINGS[lang]["error_intro"] in html
    assert "✗ " + STRINGS[lang]["fail"] in verdict  # not passed, all the same


def test_zh_html_labels_are_chinese(graded):
    html = render_html(graded, lang="zh")
    assert '<html lang="zh-CN">' in html
    for key in ("verdict", "metrics", "training", "per_class", "confusion", "samples", "model"):
        assert f"<h2>{STRINGS['zh'][key]}</h2>" in html
    for name in CLASSES:
        assert CLASS_NAMES_ZH[name] in html


def test_bad_input_names_the_problem(graded):
    with pytest.raises(GraderError, match="schema_version is 2"):
        render_html({**graded, "schema_version": 2})
    with pytest.raises(GraderError, match="lack the keys: confusion_matrix"):
        render_html({**graded, "confusion_matrix": None})
    with pytest.raises(GraderError, match="confusion_matrix is not 10x10"):
        render_html({**graded, "confusion_matrix": graded["confusion_matrix"][:9]})
    with pytest.raises(GraderError, match="unknown report language 'fr'"):
        render_html(graded, lang="fr")


def test_missing_cjk_font_warns_and_still_renders(monkeypatch, graded):
    from grader.report import figures

    monkeypatch.setattr(figures, "find_cjk_font", lambda: None)
    with pytest.warns(RuntimeWarning, match="fonts-noto-cjk"):
        html = render_html(graded, lang="zh")
    assert "训练曲线" in html


# --- golden files -----------------------------------------------------------------------------


def normalise(html: str) -> str:
    """Images differ by matplotlib/Pillow version, so they are elided; the stylesheet (kept in git
    as templates/report.css) is pinned by its hash; the golden files hold everything else."""
    import hashlib

    html = re.sub(r"data:image/(png|svg\+xml);base64,[A-Za-z0-9+/=]+", r"data:image/\1;base64,...", html)
    return re.sub(r"<style>\n(.*?)</style>",
                  lambda m: f"<style>/* sha256 {hashlib.sha256(m.group(1).encode()).hexdigest()[:16]} */</style>",
                  html, flags=re.S)


@pytest.mark.parametrize("name,lang", [("graded", "en"), ("graded", "zh"), ("error", "en")])
def test_golden_html(name, lang):
    got = normalise(render_html(load(name), lang=lang))
    path = GOLDEN / f"{name}-{lang}.html"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest tests/test_report.py -k golden"
    assert got == path.read_text(encoding="utf-8"), (
        f"the rendered HTML differs from {path}; if the change is intended, run "
        "UPDATE_GOLDEN=1 pytest tests/test_report.py -k golden and review git diff tests/golden")


# --- PDF --------------------------------------------------------------------------------------


@needs_poppler
def test_pdf_text_holds_student_accuracy_and_classes(pdfs):
    text = pdf_text(pdfs["en"])
    assert "Lin Mei" in text and "s2024017" in text
    assert "71.95%" in text
    for name in CLASSES:
        assert name in text
    assert "Page 1 of 3" in text  # the footer, from the page counter


def test_pdfs_fit_their_page_budgets(pdfs):
    """A homework network's report in 3 A4 pages in either language; an error report in 1."""
    from pypdf import PdfReader

    for key, budget in (("en", 3), ("zh", 3), ("error", 1)):
        reader = PdfReader(pdfs[key])
        assert len(reader.pages) <= budget, (key, len(reader.pages))
        box = reader.pages[0].mediabox
        assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points


def test_no_heading_ends_a_page(pdfs):
    """Every heading has what it heads on its own page: no page's text ends with a heading."""
    for key, lang in (("en", "en"), ("zh", "zh"), ("error", "en")):
        t = STRINGS[lang]
        headings = {t[k] for k in ("verdict", "details", "metrics", "integrity", "per_class", "confusion",
                                   "samples", "training", "model", "confused_pairs", "confident_wrong")}
        for number, text in enumerate(pdf_page_texts(pdfs[key]), 1):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            body = [line for line in lines if not re.search(r"(Page|第) \d+", line)]  # the page footer
            assert body and body[-1] not in headings, (key, number, body[-3:])


def test_a_table_split_across_pages_repeats_its_header_row(tmp_path):
    """A network of 120 distinct stages cannot be condensed: its layer table spans pages, and each
    page of it starts with the column headings."""
    results = {**load("graded"), "history": None, "samples": [], "confident_wrong": []}  # fewer pictures
    results["model"]["layers"] = [{"name": f"fc{i}", "type": "Linear", "output_shape": [100 + i],
                                   "parameters": 1000 + i} for i in range(120)]
    _, pdf = write_report(results, tmp_path)
    pages = [text for text in pdf_page_texts(pdf) if "fc" in text]
    assert len(pages) >= 2
    for text in pages:
        rows = [line for line in text.splitlines() if re.match(r"fc\d+ ", line.strip())]
        header = text.index("Output shape")
        assert rows and header < text.index(rows[0]), text[:300]


@needs_poppler
def test_pdf_without_history_stays_within_its_budget(tmp_path):
    results = load("graded")
    results["history"] = None
    (_, pdf) = write_report(results, tmp_path)
    assert pdf_pages(pdf) <= 3 and "Training curves" not in pdf_text(pdf)


@needs_poppler
def test_zh_pdf_holds_chinese_headings(pdfs):
    text = pdf_text(pdfs["zh"])
    for key in ("title", "verdict", "metrics", "training", "per_class", "confusion", "samples", "model"):
        assert STRINGS["zh"][key] in text, key
    assert "猫" in text and "卡车" in text
    assert "第 1 页，共 3 页" in text
    fonts = subprocess.run(["pdffonts", str(pdfs["zh"])], capture_output=True, text=True).stdout
    assert "CJK" in fonts


@needs_poppler
def test_error_pdf_holds_the_error_and_what_to_do(pdfs):
    text = pdf_text(pdfs["error"])
    assert "Wang Hao" in text and "What to do" in text and "pickled module" in text


def test_render_pdf_returns_a_pdf(error):
    data = render_pdf(fixture_html("error"))
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


# --- writing and the CLI ----------------------------------------------------------------------


def test_a_failed_pdf_leaves_no_report_of_an_earlier_grade(tmp_path, graded, error, monkeypatch):
    import grader.report.render as render
    from grader.errors import GraderError

    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("the last grade's report")
    (out / "report.pdf").write_bytes(b"%PDF- the last grade's")

    def broken(html):
        raise GraderError("WeasyPrint failed", "install the fonts")

    monkeypatch.setattr(render, "render_pdf", broken)
    with pytest.raises(GraderError, match="WeasyPrint"):
        write_report(error, out)
    assert "the last grade" not in (out / "report.html").read_text()  # this grade's HTML still stands
    assert not (out / "report.pdf").exists()
    (out / "report.pdf").write_bytes(b"%PDF- the last grade's")
    write_report(graded, out, pdf=False)
    assert not (out / "report.pdf").exists()  # an HTML-only report takes the old PDF away too


def test_write_report_is_atomic_and_html_only_on_request(tmp_path, graded):
    paths = write_report(graded, tmp_path / "out", pdf=False)
    assert paths == [tmp_path / "out" / "report.html"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html"]  # no temp files


def test_report_command(tmp_path):
    from click.testing import CliRunner

    from grader.cli import main

    result = CliRunner().invoke(main, ["report", str(FIXTURES / "results_error.json"),
                                       "--out", str(tmp_path / "r"), "--lang", "zh", "--no-pdf"])
    assert result.exit_code == 0, result.output
    assert "未能评分" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")

    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(main, ["report", str(bad), "--out", str(tmp_path / "r2")])
    assert result.exit_code != 0 and "bad.json is not a JSON results file" in result.output


# --- Chromium ---------------------------------------------------------------------------------


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON)."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--remote-debugging-pipe"]

    def __init__(self, profile: Path):
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()

        def wire_fds():
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen([CHROMIUM, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     pass_fds=(3, 4), preexec_fn=wire_fds,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buf, self._next_id, self.events = b"", 0, []

    def close(self):
        self.proc.kill()
        self.proc.wait()
        os.close(self._in)
        os.close(self._out)

    def _receive(self, done, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                message = json.loads(raw)
                self.events.append(message)
                if done(message):
                    return message
            if select.select([self._in], [], [], 0.5)[0]:
                self._buf += os.read(self._in, 1 << 20)
        raise TimeoutError("chromium did not answer in time")

    def call(self, method, params=None, session=None):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        reply = self._receive(lambda m, i=self._next_id: m.get("id") == i)
        assert "error" not in reply, reply
        return reply["result"]

    def load(self, url: str, width: int, height: int, mobile: bool) -> tuple[list[dict], bytes, int]:
        """Open ``url``; return (failed loads + console errors + exceptions, full-page PNG, page width)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}, session=session)
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=session)
        self._receive(lambda m: m.get("method") == "Page.loadEventFired")
        page_width = self.call("Runtime.evaluate", {"expression": "document.documentElement.scrollWidth"},
                               session=session)["result"]["value"]
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         session=session)
        problems = [m for m in self.events
                    if m.get("method") in ("Network.loadingFailed", "Runtime.exceptionThrown")
                    or (m.get("method") == "Runtime.consoleAPICalled" and m["params"]["type"] in ("error", "warning"))
                    or (m.get("method") == "Log.entryAdded" and m["params"]["entry"]["level"] in ("error", "warning"))]
        return problems, base64.b64decode(shot["data"]), page_width


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    if not CHROMIUM:
        pytest.skip("chromium is not installed (apt-get install chromium); the browser checks need it")
    browser = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.close()


def test_chromium_catches_a_broken_page(chromium, tmp_path):
    """The detector itself: a missing image, a console error and a too-wide page are all caught."""
    page = tmp_path / "broken.html"
    page.write_text('<img src="missing.png"><script>console.error("boom")</script>'
                    '<div style="width: 2000px">too wide</div>', encoding="utf-8")
    problems, _, page_width = chromium.load(page.as_uri(), 800, 600, False)
    methods = {m["method"] for m in problems}
    assert "Network.loadingFailed" in methods and "Runtime.consoleAPICalled" in methods
    assert page_width > 800


@pytest.mark.parametrize("key,width,height,mobile", [("en", 1280, 900, False), ("zh", 390, 844, True),
                                                      ("error", 390, 844, True)])
def test_html_loads_cleanly_in_chromium(chromium, pdfs, key, width, height, mobile):
    from PIL import Image

    html_path = pdfs[key + "_html"]
    problems, png, page_width = chromium.load(html_path.as_uri(), width, height, mobile)
    assert problems == []
    assert page_width <= width  # no sideways scrolling of the page: wide tables scroll in their box
    shot = html_path.with_name(f"screenshot-{width}.png")
    shot.write_bytes(png)
    with Image.open(shot) as image:
        assert image.width == width and image.height > height  # the full page, not a blank viewport
        assert len(image.convert("L").getcolors(1 << 16) or []) > 50  # something was drawn


def test_latency_card_says_how_many_images_each_arithmetic_computed():
    from grader.report.context import _inference_paths

    precision = {"paths": {"bfloat16": 9000, "float32-channels-last": 900, "float32": 100}}
    assert _inference_paths(precision, STRINGS["en"]).startswith("9,000 images in bfloat16, 1,000 in float32")
    assert "9,000 张图像用 bfloat16" in _inference_paths(precision, STRINGS["zh"])
    # float32 throughout, or results written before the tiers: no note
    assert _inference_paths({"paths": {"bfloat16": 0, "float32": 10000}}, STRINGS["en"]) == ""
    assert _inference_paths({"precision": "float32"}, STRINGS["en"]) == ""
    assert _inference_paths(None, STRINGS["en"]) == ""


def test_a_test_accuracy_above_train_is_said_in_words_not_as_a_negative_gap(graded):
    ahead = {**graded, "history": {"epoch": [1, 2], "train_acc": [0.5, 0.6], "test_acc": [0.55, 0.7]}}
    for lang in ("en", "zh"):
        html = render_html(ahead, lang=lang)
        assert "-10.0%" not in html and "10.0%" in html
    assert "is 10.0% above train accuracy" in render_html(ahead)


def test_a_hand_in_whose_form_is_unknown_shows_no_none(error):
    unknown = {**error, "submission": {**error["submission"], "format": None}}
    html = render_html(unknown)
    assert "None" not in html and "· None" not in html


# --- what a student reads ---------------------------------------------------------------------


def visible_text(html: str) -> str:
    """The text a reader sees: no style sheet, no tags, no attributes."""
    from html import unescape

    html = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def english_words(text: str, allowed: set[str]) -> set[str]:
    """Latin words in ``text`` beyond the allowed: a token with a digit (CIFAR-10, SHA-256, Conv2d,
    a hash), a dot or an underscore (a file name, a key) is a name, not a word."""
    tokens = re.findall(r"[A-Za-z][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Za-z]", text)
    return {w for w in tokens if len(w) > 1 and not re.search(r"[\d._]", w) and w not in allowed}


def test_the_zh_report_holds_no_english_words(graded, pdfs):
    """Under --lang zh everything a student reads is Chinese, beyond names (the student, the
    network's layer types, the device, grader), numbers, units (ms, UTC), file names and the field's usual
    abbreviations."""
    allowed = {"CIFAR", "ECE", "MACs", "SHA", "PDF", "ms", "UTC", "grader", "cpu", *graded["student"]["name"].split(),
               *(layer["type"] for layer in graded["model"]["layers"])}
    assert english_words(visible_text(pdfs["zh_html"].read_text(encoding="utf-8")), allowed) == set()
    assert english_words("\n".join(pdf_page_texts(pdfs["zh"])), allowed) == set()
    said = say("load.keys_mismatch", file="model.pt", detail=say("load.missing_keys", keys="fc.weight, fc.bias"))
    error = {**load("error"), "error": str(GraderError(said)), "error_detail": said.to_json()}
    assert english_words(visible_text(render_html(error, lang="zh")), allowed | {"Wang", "Hao"}) == set()
    # an error without a catalogue entry (an older results.json): its English, under a Chinese lead-in
    text = visible_text(fixture_html("error", "zh"))
    message = "model.pt is a pickled module, which the grader never unpickles"
    assert f"{RAW_LEAD['zh']} {message}" in re.sub(r"\s+", " ", text)
    assert english_words(text.replace(message, ""), allowed | {"Wang", "Hao"}) == {
        "save", "the", "weights", "with", "and", "name", "architecture", "in"}  # and its hint, as written
    assert english_words(visible_text(pdfs["en_html"].read_text(encoding="utf-8")), allowed)  # it can fail


def with_integrity_findings(results: dict) -> dict:
    """``results`` with every integrity finding a grade can record: a lying history (two claims and
    the check that read one), a test-set fit, a memorised test set, an input-convention and a
    class-order diagnosis, graded with the fix less a penalty; stored as the grader stores them."""
    from grader.integrity.claims import Measured, Mismatch, suspicious_fit
    from grader.integrity.diagnosis import CONVENTIONS, Diagnosis
    from grader.integrity.gate import NOT_BORNE_OUT
    from grader.integrity.memorisation import memorisation_flag

    out = copy.deepcopy(results)
    loss, acc = Mismatch("train_loss", 0.262, 1.93, 1.21), Mismatch("train_acc", 0.9275, 0.412, 0.49)
    train = Measured(0.412, (0.381, 0.443), 1.93, (1.85, 2.01), 1000)
    test = Measured(out["accuracy"], tuple(out["accuracy_ci"]), out["loss"], (0.8, 0.9), 10000)
    bgr = next(c for c in CONVENTIONS if c.normalisation == "cifar10" and c.bgr)
    out["measured"] = {"train_accuracy": train.accuracy, "train_accuracy_ci": list(train.accuracy_ci),
                       "train_loss": train.loss, "train_loss_ci": list(train.loss_ci), "count": train.count}
    out["memorisation"] = {"clean_subset_acc": 0.724, "perturbed_acc": 0.311, "flagged": True, "count": 1000,
                           "detail": memorisation_flag(0.724, 0.311)}
    out["integrity"] = {
        "history_mismatch": [{**dataclasses.asdict(m), "detail": m.sentence()} for m in (loss, acc)],
        "test_set_fit": suspicious_fit(test, train),
        "diagnosis": [Diagnosis("input-convention", f"the network expects {bgr.name}", tuple(bgr.toml_lines()),
                                0.83, (0.78, 0.87), (), bgr).to_json(),
                      Diagnosis("class-order", "the network's outputs are in another class order",
                                ('classes = ["truck", "ship"]',), 0.83, (0.78, 0.87)).to_json()],
        "applied": {"accuracy_as_handed_in": 0.121, "penalty": 0.25}}
    out["checks"].append({"name": "final training loss below 0.5", "name_zh": "最终训练损失低于 0.5",
                          "metric": "history.train_loss", "op": "x < 0.5", "threshold": None, "passed": False,
                          "value": None, "score": 0.0, "max_score": 1.0, "borderline": False,
                          "detail": NOT_BORNE_OUT.format(finding=loss.sentence())})
    out["flags"] = sorted({*out["flags"], "history-mismatch", "test-set-fit", "memorisation-suspected",
                           "input-convention", "class-order", "diagnosis-applied"})
    return out


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_integrity_without_a_log_shows_no_column_of_claims(graded, lang):
    """Measured on training images with no history handed in: the claims were a column of dashes
    under "against what its log claims"."""
    t = STRINGS[lang]
    results = with_integrity_findings(graded)
    results["history"] = None
    results["integrity"]["history_mismatch"] = []
    html = render_html(results, lang=lang)
    box = html[html.index('<section id="integrity"'):html.index("</section>", html.index('<section id="integrity"'))]
    assert str(escape(t["integrity_claimed"])) not in box and str(escape(t["integrity_what"])) not in box
    lead = t["check_measured_instead"]
    assert str(escape(lead[:1].upper() + lead[1:])) in box and str(escape(t["integrity_measured"])) in box
    assert "<td class=\"num\">–</td>" not in box
    html = render_html(with_integrity_findings(graded), lang=lang)  # with a log: both columns
    assert str(escape(t["integrity_claimed"])) in html and str(escape(t["integrity_what"])) in html


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_claim_above_the_measurement_says_which_allowance_let_it_pass(graded, lang):
    """A network trained on the official images and graded on another copy logs 10 points more
    than it measures, within the allowance, so no flag: the box says why, and only then."""
    from grader.integrity.claims import TOLERANCES

    said = STRINGS[lang]["integrity_other_copy"].format(points=f"{TOLERANCES.other_copy * 100:g}")
    results = with_integrity_findings(graded)
    results["integrity"] = {"history_mismatch": [], "test_set_fit": None, "diagnosis": []}
    results["memorisation"] = None
    results["flags"] = [f for f in results["flags"] if f not in {"history-mismatch", "test-set-fit",
                        "memorisation-suspected", "input-convention", "class-order", "diagnosis-applied"}]
    results["measured"]["train_accuracy"] = 0.881
    results["history"] = {"epoch": [1, 2], "train_loss": [0.5, 0.03], "train_acc": [0.9, 0.99],
                          "test_acc": [0.88, results["accuracy"] + 0.108]}
    results["dataset"] = {**results["dataset"], "official": False}
    assert str(escape(said)) in render_html(results, lang=lang)
    assert str(escape(said)) not in render_html({**results, "dataset": {**results["dataset"], "official": True}},
                                                lang=lang)  # on the official data nothing needed allowing
    honest = {**results, "history": {**results["history"], "train_acc": [0.8, 0.85],
                                      "test_acc": [0.7, results["accuracy"]]}}
    assert str(escape(said)) not in render_html(honest, lang=lang)  # a log below the measurement is usual


def without_code(html: str) -> str:
    """``html`` less its code (submission.toml lines stay as written in every language)."""
    return re.sub(r"<pre>.*?</pre>|<code>.*?</code>", " ", html, flags=re.S)


def test_the_zh_integrity_box_words_every_finding_in_chinese(graded):
    """Findings, diagnoses, the applied fix and the reason a claim earns nothing are worded from
    results.json's numbers in the report's language; results.json keeps its English sentences."""
    results = with_integrity_findings(graded)
    zh = render_html(results, lang="zh")
    allowed = {"CIFAR", "ECE", "MACs", "SHA", "PDF", "ms", "UTC", "grader", "cpu", "BGR",
               *graded["student"]["name"].split(), *(layer["type"] for layer in graded["model"]["layers"])}
    assert english_words(visible_text(without_code(zh)), allowed) == set()
    start = zh.index('<section id="integrity"')
    box = visible_text(zh[start:zh.index("</section>", start)])
    assert "训练日志声称最后一轮的训练损失为 0.262" in box and "至多为 49.00%" in box
    assert "在测试集上的准确率为 71.95%，在训练图像上却只有 41.20%，高出 30.75%" in box
    assert "准确率从 72.40% 降到 31.10%" in box
    assert "像素值缩放到 0..1，用 CIFAR-10 的均值和标准差归一化，通道顺序为 BGR。" in box
    assert "网络输出的类别顺序与数据集不同" in box and "扣除 25% 的分数" in box and "12.10%" in box
    assert 'channels = "bgr"' in box  # the fix lines stay code
    todo = visible_text(zh[zh.index("需要改进"):zh.index('<table class="checks">')])
    assert "最终训练损失低于 0.5：无数值：该声明与实测不符：训练日志声称" in todo
    en = visible_text(render_html(results, lang="en"))
    assert "the network expects pixels 0..1, normalised with the CIFAR-10 mean and std, channels in BGR order" in en
    assert "the history claims a final training accuracy of 92.75%, but the network scores 41.20%" in en
    assert "no value: the claim is not borne out: the history claims a final training loss of 0.262" in en
    saved = GradeResult.from_json(results).to_json()
    assert saved["integrity"]["test_set_fit"].startswith("the network scores")  # the record stays English
    assert saved["integrity"]["diagnosis"][0]["convention"] == {"scale": 1.0, "normalisation": "cifar10",
                                                                "channels": "bgr"}


def test_a_diagnosis_written_before_its_convention_was_stored_shows_its_cause(graded):
    results = with_integrity_findings(graded)
    del results["integrity"]["diagnosis"][0]["convention"]
    html = render_html(results, lang="zh")
    assert "the network expects Normalize" not in html and "CIFAR-10 mean and std, channels BGR" in html


def test_values_and_thresholds_share_one_unit_per_kind():
    html = fixture_html("graded")
    table = re.search(r'<table class="checks">.*?</table>', html, re.S).group(0)
    rows = {re.sub(r"<.*", "", r[0]): r[1:] for r in re.findall(
        r'<tr class="\w+">\s*<td>(.*?)</td>\s*<td class="num">(.*?)</td>\s*<td class="num">(.*?)</td>', table, re.S)}
    assert rows["test accuracy above 0.7"] == ("71.95%", "70% &lt; x ≤ 100%")
    assert rows["worst-class recall"] == ("46.60%", "x ≥ 50%")
    assert rows["train/test accuracy gap"] == ("20.81%", "≤ 25%")
    assert rows["parameter count"] == ("1,244,106", "≤ 2,000,000")
    assert rows["latency per image (ms)"] == ("1.84 ms", "≤ 5 ms")
    assert "71.95%" in re.search(r'<div class="cards">.*?</section>', html, re.S).group(0)  # as on its card


def test_zh_check_names_flags_and_badges_are_chinese():
    html = fixture_html("graded", "zh")
    assert "最差类别召回率" in html and "worst-class recall" not in html
    assert "✗ 未通过" in html and "⚠ 临界" in html
    assert STRINGS["zh"]["flag_borderline"] in html and "<code>borderline</code>" not in html
    assert "<code>borderline</code>" in fixture_html("graded")  # a TA reading English gets the flag's name


@pytest.mark.parametrize("name", ["graded", "error"])
def test_students_never_see_the_graders_folders(name):
    results = load(name)
    folder = "/home/ta/courses/hw2/submissions"
    results["submission"]["path"] = f"{folder}/s2400002"
    if results["error"]:
        results["error"] = results["error"].replace("submissions/s2024099", f"{folder}/s2400002")
    html = render_html(results, lang="zh" if results["error"] else "en")
    assert "/home/ta" not in html and "<code>s2400002</code>" in html
    if results["error"]:
        assert "s2400002/model.pt is a pickled module" in html


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("best", [1, 10, 20])
def test_the_best_epoch_label_sits_inside_the_axes(lang, best):
    """Drawn with matplotlib's renderer: the label's box lies within the axes it marks, wherever
    the best epoch falls (at the last epoch it used to run off the figure's right edge)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from grader.report import figures

    t = STRINGS[lang]
    epochs = list(range(1, 21))
    test_acc = [0.4 + 0.01 * e for e in epochs]
    test_acc[best - 1] = 0.9
    with matplotlib.rc_context(figures._rc(figures.STYLE)):
        fig = figures.training_curves_figure(
            epochs, loss=[2.0 / e for e in epochs], accuracies={t["train_acc"]: [0.5 + 0.02 * e for e in epochs],
                                                                  t["test_acc"]: test_acc},
            best_epoch=best, labels={"best": t["best_epoch"].format(epoch=best)})
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        label = next(a for ax in fig.axes for a in ax.texts if a.get_gid() == "best-epoch")
        box = label.get_bbox_patch().get_window_extent(renderer)
        axes = label.axes.get_window_extent(renderer)
    assert label.get_text() == t["best_epoch"].format(epoch=best)
    assert axes.x0 <= box.x0 and box.x1 <= axes.x1 and axes.y0 <= box.y0 and box.y1 <= axes.y1, (box, axes)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("loss", [[2.1, 1.2, 0.6, 0.4], [0.0312, 0.0305, 0.0298, 0.0291], [1.0012, 1.0009, 1.0004, 1.0001]])
def test_the_loss_axis_label_is_never_cut_at_the_figures_edge(lang, loss):
    """A narrow loss range ticks at 0.0300, wider than the fixed left margin: the label read
    "rain loss" in a ResNet-20's report."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from grader.report import figures

    t = STRINGS[lang]
    epochs = list(range(1, len(loss) + 1))
    with matplotlib.rc_context(figures._rc(figures.STYLE)):
        fig = figures.training_curves_figure(
            epochs, loss=loss, accuracies={t["train_acc"]: [0.9, 0.95, 0.97, 0.99], t["test_acc"]: [0.8, 0.85, 0.9, 0.91]},
            best_epoch=4, labels={"loss": t["train_loss"], "accuracy": t["accuracy_axis"]})
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        ax = fig.axes[0]
        label = ax.yaxis.label.get_window_extent(renderer)
        ticks = [tick.label1.get_window_extent(renderer) for tick in ax.yaxis.get_major_ticks() if tick.label1.get_visible()
                 and tick.label1.get_text()]
    assert label.x0 >= 0, label
    assert all(label.x1 <= box.x0 for box in ticks), (label, ticks)


def test_a_one_epoch_history_is_said_in_words_not_drawn_as_a_curve(graded):
    """One point is no curve: its axes ticked fractions of an epoch (0.945 .. 1.050)."""
    results = copy.deepcopy(graded)
    results["history"] = {"train_loss": [0.03], "train_acc": [0.99], "test_acc": [0.9178]}
    html = render_html(results)
    training = html[html.index('<section id="training"'):html.index("</section>", html.index('<section id="training"'))]
    assert "<img" not in training
    assert "Best test accuracy 91.8% at epoch 1" in training
    results["history"] = {"train_loss": [0.5, 0.03], "train_acc": [0.8, 0.99], "test_acc": [0.7, 0.9178]}
    html = render_html(results)
    assert "<img" in html[html.index('<section id="training"'):]


def thumbnail_rows(html: str) -> list[list[float]]:
    """The heights (CSS px) of the thumbnails in each printed row, from weasyprint's layout."""
    import collections

    import weasyprint

    rows = collections.defaultdict(list)
    for number, page in enumerate(weasyprint.HTML(string=html).render().pages):
        for box in page._page_box.descendants():
            element = getattr(box, "element", None)
            if box.element_tag == "figure" and "thumb" in (element.get("class") or "").split():
                rows[number, round(box.position_y, 1)].append(box.height)
    return list(rows.values())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_thumbnails_in_a_row_line_up_and_no_caption_line_starts_with_a_dot(graded, lang):
    """A wrong prediction's caption ran to a fourth line ("✗" / "automobile" / "· 100%") and its
    dashed frame stood taller than its row; the thicker frame also shrank its image."""
    results = copy.deepcopy(graded)
    for s in results["confident_wrong"][:2]:
        s.update(true="truck", predicted="automobile", confidence=1.0)
    html = render_html(results, lang=lang)
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", html)
    assert captions and not [c for c in captions if any(line.startswith("·") for line in c.splitlines())]
    rows = thumbnail_rows(html)
    assert len(rows) >= 3
    for heights in rows:
        assert max(heights) - min(heights) < 0.5, heights


def test_a_reliability_diagram_stands_beside_the_ece(graded):
    html = fixture_html("graded")
    metrics = html[html.index('<section id="metrics"'):html.index("</section>", html.index('<section id="metrics"'))]
    assert 'class="metrics-row with-figure"' in metrics and "Calibration error (ECE)" in metrics
    assert metrics.count('src="data:image/png;base64,') == 1
    older = {key: value for key, value in graded.items() if key != "reliability"}  # written before the bins
    html = render_html(older)
    assert "metrics-row with-figure" not in html and "3.12%" in html


def test_the_layer_table_is_condensed_and_results_keep_every_layer(graded):
    html = fixture_html("graded")
    table = re.search(r'<table class="layers">.*?</table>', html, re.S).group(0)
    assert table.count("<tr>") == 8 + 2  # eight stages, the header and the total
    assert "Conv2d → ReLU → MaxPool2d" in table and "21 layers in 8 rows" in html
    assert len(graded["model"]["layers"]) == 21


@pytest.mark.slow  # a whole (unsandboxed) grade of a ResNet-20 and its PDF: ~10 s
def test_a_resnet20_report_fits_four_pages(tmp_path):
    """A ResNet-20 handed in as model.py and its (random) weights: its 51 layers condense to
    a short table, and the whole report fits 4 A4 pages."""
    import torch

    from grader.pipeline import grade_one
    from tests.fixtures.make_submissions import RESNET20_PY, tiny_data

    folder = tmp_path / "s2400020"
    folder.mkdir()
    (folder / "model.py").write_text(RESNET20_PY, encoding="utf-8")
    namespace: dict = {}
    exec(compile(RESNET20_PY, "model.py", "exec"), namespace)
    torch.manual_seed(0)
    torch.save(namespace["ResNet20"]().state_dict(), folder / "weights.pth")
    result = grade_one(folder, data=tiny_data(40), sandbox=False)
    assert result.graded, result.error
    assert len(result.model.layers) == 51  # results.json keeps every layer
    html_path, pdf_path = write_result_report(result, tmp_path / "report")
    html = html_path.read_text(encoding="utf-8")
    for row in ("layer1.0–2", "3 × BasicBlock", "layer2.1–2", "2 × BasicBlock", "layer3.0"):
        assert row in html, row
    assert len(pdf_page_texts(pdf_path)) <= 4


def checks_of_every_kind() -> GradeResult:
    """A graded result whose checks hold each kind of detail: passed, failed and borderline,
    measured instead of a missing history, no history, no such value, and integrity's reason."""
    from grader.integrity.gate import REPORTED_FACT
    from grader.rubric import Check, apply_check
    from tests.test_batch import synthetic_results

    metrics = {"accuracy": 0.70, "dataset.test_count": 10000, "measured.train_loss": 0.4, "overfit_gap": 0.3}
    checks = [Check("test accuracy above 0.7", "accuracy", "0.7 < x <= 1", lower=0.7, upper=1.0, upper_inclusive=True,
                    name_zh="测试准确率高于 70%"),
              Check("final training loss below 0.5", "train_loss", "x < 0.5", upper=0.5, name_zh="最终训练损失低于 0.5"),
              Check("final training accuracy above 0.7", "train_acc", "x > 0.7", lower=0.7,
                    name_zh="最终训练准确率高于 70%"),
              Check("gap", "overfit_gap", "x <= 0.25", upper=0.25, upper_inclusive=True, name_zh="准确率差距"),
              Check("worst class", "per_class_accuracy.min", "x >= 0.5", lower=0.5, lower_inclusive=True,
                    name_zh="最差类别"),
              Check("parameters", "parameters", "x <= 2000000", upper=2e6, upper_inclusive=True, name_zh="参数量")]
    results = tuple(apply_check(c, metrics, reasons={"model.parameters": REPORTED_FACT}) for c in checks)
    result = synthetic_results("ada", 0.70)
    return result.replace(verdict=dataclasses.replace(
        result.verdict, checks=results, score=sum(c.score for c in results), max_score=sum(c.max_score for c in results),
        passed=all(c.passed for c in results), borderline=any(c.borderline for c in results)))


def test_a_checks_detail_is_said_in_the_readers_language():
    from grader.report.context import check_detail
    from tests.test_batch import synthetic_results

    result = checks_of_every_kind()
    details = [check_detail(c, result, "zh") for c in result.verdict.checks]
    assert [check_detail(c, result, "en") for c in result.verdict.checks] == [c.detail for c in result.verdict.checks]
    assert result.verdict.checks[0].detail.startswith("0.7 fails 0.7 < x <= 1")  # English: as results.json holds it
    assert details[0] == f"70.00% 不满足条件 70% < x ≤ 100%；{STRINGS['zh']['check_borderline']}"
    assert details[1] == f"0.400 满足条件 x < 0.5；{STRINGS['zh']['check_measured_instead']}"
    assert details[2] == STRINGS["zh"]["check_no_history"] and details[4] == STRINGS["zh"]["check_not_available"]
    assert details[5] == STRINGS["zh"]["check_missing_because"].format(
        reason=STRINGS["zh"]["integrity_reason_reported"])
    allowed = {"history", "json", "submission", "toml", "true", "x"}  # TOML the hints quote
    assert english_words("\n".join(details), allowed) == set()
    said = say("history.missing", file="history.json")
    error = synthetic_results("bob", None, error=str(said)).replace(error_detail=said)
    assert check_detail(error.verdict.checks[0], error, "zh") == f"未评分：{said.text('zh')}\n  建议：{said.hint('zh')}"
    assert english_words(check_detail(error.verdict.checks[0], error, "zh"), allowed) == set()
    assert english_words("\n".join(check_detail(c, result, "en") for c in result.verdict.checks), allowed)  # can fail
