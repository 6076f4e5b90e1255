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


def expected_pages(html: str) -> int:
    """What the print CSS implies: page 1, then one page per section that starts a new page."""
    return 1 + len(re.findall(r'<section id="[^"]+" class="new-page"', html))


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
    html = render_html(graded)
    assert "<script" not in html
    for url in re.findall(r'(?:src|href)="([^"]*)"', html) + re.findall(r"url\(([^)]*)\)", html):
        assert url.startswith("data:"), url
    assert html.count('src="data:image/png;base64,') == 2 + len(graded["samples"]) + len(graded["confident_wrong"])


def test_html_holds_the_sections_in_the_issues_order(graded):
    html = render_html(graded)
    ids = re.findall(r'<section id="([^"]+)"', html)
    assert ids == ["verdict", "metrics", "training", "per-class", "confusion", "samples", "model"]
    assert "Lin Mei" in html and graded["submission"]["sha256"] in html
    assert "71.95%" in html and "c10-4f1e9a2b7d3c" in html
    for name in CLASSES:
        assert f">{name}<" in html


def test_wrong_predictions_are_marked_by_symbol_not_only_colour(graded):
    html = render_html(graded)
    wrong = sum(not s["correct"] for s in graded["samples"]) + len(graded["confident_wrong"])
    assert html.count('class="thumb wrong"') == wrong
    assert len(re.findall(r"<figcaption>[^<\n]+\n✗ ", html)) == wrong
    assert "✗ fail" in html and "⚠ borderline" in html  # failed + borderline rubric checks


def test_confusion_counts_and_pairs_are_text(graded):
    html = render_html(graded)
    table = re.search(r'<table class="heatmap">.*?</table>', html, re.S).group(0)
    cells = [int(v) for v in re.findall(r">(\d+)</td>", table)]
    assert cells == [v for row in graded["confusion_matrix"] for v in row]
    assert ">cat</td><td class=\"muted\">→ mistaken for</td><td>dog</td><td class=\"num\">350<" in html


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
    """A student name or image from a results file cannot inject markup or break the CSS footer."""
    results = load("graded")
    results["student"]["name"] = 'Bob\\"; } body { display: none } </style><script>alert(1)</script>'
    results["samples"][0]["png"] = '"><script>alert(2)</script>'
    html = render_html(results)
    assert "<script" not in html and html.count("</style>") == 1
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
    html = render_html(error)
    assert re.findall(r'<section id="([^"]+)"', html) == ["verdict", "error"]
    assert "is a pickled module, which the grader never unpickles" in html
    assert "save the weights with torch.save" in html  # the hint, under "What to do"
    assert "What to do" in html and "3 of 3 checks failed" in html


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
    assert "Page 1 of 6" in text  # the footer, from the page counter


@needs_poppler
def test_pdf_is_a4_with_the_pages_the_layout_implies(pdfs):
    html = pdfs["en_html"].read_text(encoding="utf-8")
    assert pdf_pages(pdfs["en"]) == expected_pages(html) == 6
    info = subprocess.run(["pdfinfo", str(pdfs["en"])], capture_output=True, text=True).stdout
    assert "595.276 x 841.89 pts (A4)" in info
    assert pdf_pages(pdfs["error"]) == 1


@needs_poppler
def test_pdf_without_history_loses_one_page(tmp_path):
    results = load("graded")
    results["history"] = None
    (_, pdf) = write_report(results, tmp_path)
    assert pdf_pages(pdf) == 5


@needs_poppler
def test_zh_pdf_holds_chinese_headings(pdfs):
    text = pdf_text(pdfs["zh"])
    for key in ("title", "verdict", "metrics", "training", "per_class", "confusion", "samples", "model"):
        assert STRINGS["zh"][key] in text, key
    assert "猫" in text and "卡车" in text
    assert "第 1 页，共 6 页" in text
    fonts = subprocess.run(["pdffonts", str(pdfs["zh"])], capture_output=True, text=True).stdout
    assert "CJK" in fonts


@needs_poppler
def test_error_pdf_holds_the_error_and_what_to_do(pdfs):
    text = pdf_text(pdfs["error"])
    assert "Wang Hao" in text and "What to do" in text and "pickled module" in text


def test_render_pdf_returns_a_pdf(error):
    data = render_pdf(render_html(error))
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
