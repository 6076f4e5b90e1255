"""Robustness: each corruption against its formula, seeded and in range; the subset, its cache,
its scores; a grade that measures it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from grader.metric_names import metric_problem
from grader.results import GradeResult
from grader.robustness import DEFAULT_N
from grader.robustness import corruptions as c
from grader.robustness.cache import CorruptedSet, corrupted_set, generate, subset
from grader.robustness.measure import Robustness, measure
from grader.robustness.request import robustness_size, with_room
from grader.rubric import parse_rubric
from tests.fixtures.make_submissions import tiny_data


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def natural(n: int = 2, seed: int = 0) -> np.ndarray:
    """Smooth random images (blurred noise): closer to photographs than white noise."""
    noise = rng(seed).random((n, 32, 32, 3))
    smooth = ndimage.gaussian_filter(noise, (0, 2, 2, 0))
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).astype(np.uint8)


def constant(value: int = 128, n: int = 2) -> np.ndarray:
    return np.full((n, 32, 32, 3), value, np.uint8)


# --- every corruption ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(c.CORRUPTIONS))
def test_every_corruption_keeps_uint8_shape_and_is_seeded(name):
    images = natural(2)
    for severity in range(1, 6):
        out = c.corrupt(name, images, severity, rng(7))
        assert out.dtype == np.uint8 and out.shape == images.shape
        assert np.array_equal(out, c.corrupt(name, images, severity, rng(7)))
    assert not np.array_equal(c.corrupt(name, images, 5, rng(0)), images)  # severity 5 always changes it
    assert c.corrupt(name, images[0], 3, rng(7)).shape == images[0].shape  # one image in, one out


def test_bad_requests_say_what_to_pass():
    with pytest.raises(ValueError, match="photographs"):
        c.corrupt("frost", natural(1), 1, rng())
    with pytest.raises(ValueError, match="1..5"):
        c.corrupt("fog", natural(1), 6, rng())
    with pytest.raises(ValueError, match="uint8"):
        c.corrupt("fog", natural(1).astype(np.float32), 1, rng())


# --- formulas ------------------------------------------------------------------------------


def test_contrast_pulls_each_channel_to_its_mean():
    images = natural(2)
    for severity, factor in enumerate(c.CONTRAST, 1):
        x = images / 255.0
        mean = x.mean(axis=(1, 2), keepdims=True)
        expected = (np.clip((x - mean) * factor + mean, 0, 1) * 255).astype(np.uint8)
        assert np.array_equal(c.corrupt("contrast", images, severity, rng()), expected)


def test_brightness_raises_hsv_value_keeping_hue_and_saturation():
    images = natural(2)
    images[0, 0, 0] = 0  # black: its hue and saturation are 0, so it turns grey
    for severity, shift in enumerate(c.BRIGHTNESS, 1):
        x = images / 255.0
        value = x.max(-1, keepdims=True)
        raised = np.minimum(value + shift, 1.0)
        scaled = np.where(value > 0, x * raised / np.where(value > 0, value, 1), raised)  # same hue, saturation
        expected = (np.clip(scaled, 0, 1) * 255).astype(np.uint8)
        out = c.corrupt("brightness", images, severity, rng())
        assert np.abs(out.astype(int) - expected).max() <= 1  # float rounding at the truncation only
        assert (out == expected).mean() > 0.97
        assert np.all(np.abs(out[0, 0, 0].astype(int) - shift * 255) <= 1)


def test_hsv_round_trip_is_exact():
    x = natural(3) / 255.0
    assert np.allclose(c.hsv_to_rgb(c.rgb_to_hsv(x)), x, atol=1e-12)


def test_gaussian_noise_has_the_tables_spread():
    grey = constant(128, 8)
    for severity, std in enumerate(c.GAUSSIAN_NOISE, 1):
        residual = c.corrupt("gaussian_noise", grey, severity, rng()) / 255.0 - 128 / 255.0
        assert residual.std() == pytest.approx(std, rel=0.05)
        assert abs(residual.mean() + 0.5 / 255) < 0.003  # truncation lowers it by half a level


def test_shot_noise_is_poisson_with_the_tables_rate():
    grey = constant(128, 8)
    for severity, rate in enumerate(c.SHOT_NOISE, 1):
        out = c.corrupt("shot_noise", grey, severity, rng()) / 255.0
        assert out.var() == pytest.approx((128 / 255) / rate, rel=0.08)  # Poisson: variance = mean / rate


def test_impulse_noise_sets_the_tables_fraction_half_to_each_end():
    grey = constant(128, 8)
    for severity, amount in enumerate(c.IMPULSE_NOISE, 1):
        out = c.corrupt("impulse_noise", grey, severity, rng())
        salt, pepper = (out == 255).mean(), (out == 0).mean()
        assert salt + pepper == pytest.approx(amount, rel=0.12)
        assert salt == pytest.approx(pepper, rel=0.3)
        assert set(np.unique(out[(out != 0) & (out != 255)])) <= {127, 128}  # the rest is left alone


def test_speckle_noise_scales_with_the_pixel():
    for value in (64, 192):
        out = c.corrupt("speckle_noise", constant(value, 8), 2, rng()) / 255.0
        assert (out - value / 255).std() == pytest.approx(value / 255 * c.SPECKLE_NOISE[1], rel=0.06)


@pytest.mark.parametrize("name", ["gaussian_blur", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur"])
def test_a_blur_of_a_constant_image_stays_constant(name):
    for severity in range(1, 6):
        out = c.corrupt(name, constant(200), severity, rng())
        assert np.all(np.abs(out.astype(int) - 200) <= 1)  # up to the truncation to uint8


def test_defocus_kernel_is_a_normalised_symmetric_disk():
    for radius, alias in c.DEFOCUS_BLUR:
        kernel = c.disk_kernel(radius, alias)
        assert kernel.sum() == pytest.approx(1.0)
        assert np.allclose(kernel, kernel.T) and np.allclose(kernel, kernel[::-1])
        assert kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] == kernel.max()


def test_motion_blur_is_a_one_sided_half_gaussian_along_the_angle():
    x = np.zeros((1, 32, 32, 1))
    x[0, 16, 20] = 1.0
    out = c.motion_kernel_blur(x, 6, 2.0, np.array([0.0]))[0, :, :, 0]
    taps = np.exp(-np.arange(13) ** 2 / 8.0)
    assert np.allclose(out[16, 20 - np.arange(13)], taps / taps.sum())  # tap i reads i pixels along +x
    assert out.sum() == pytest.approx(1.0) and out[16, 21:].sum() == 0 and out[:16].sum() == 0


def test_glass_blur_round_is_the_benchmarks_sequential_loop():
    x = natural(3)
    dy, dx = rng(3).integers(-1, 1, size=(2, 3, 30, 30))
    expected = x.copy()
    for b in range(3):
        for h in range(31, 1, -1):
            for w in range(31, 1, -1):  # the benchmark's order; its "swap" copies (x[a], x[b] = x[b], x[a])
                expected[b, h, w] = expected[b, h + dy[b, h - 2, w - 2], w + dx[b, h - 2, w - 2]]
    assert np.array_equal(c.local_copy(x, dy, dx, 1), expected)


def test_bilinear_zoom_is_scipys_zoom():
    x = natural(2).astype(np.float32)
    for factor in (1.0, 1.07, 1.25):
        crop = int(np.ceil(32 / factor))
        expected = ndimage.zoom(x[:, :crop, :crop], (1, factor, factor, 1), order=1)
        assert np.allclose(c.bilinear_zoom(x[:, :crop, :crop], round(crop * factor)), expected, atol=1e-4)


def test_pixelate_is_a_box_downscale_and_upscale():
    images = natural(1)
    for severity, fraction in enumerate(c.PIXELATE, 1):
        side = int(32 * fraction)
        expected = Image.fromarray(images[0]).resize((side, side), Image.BOX).resize((32, 32), Image.BOX)
        assert np.array_equal(c.corrupt("pixelate", images, severity, rng())[0], np.asarray(expected))


def test_jpeg_uses_the_tables_quality_and_loses_more_as_it_falls():
    images = natural(1)
    errors = []
    for severity, quality in enumerate(c.JPEG_QUALITY, 1):
        buffer = io.BytesIO()
        Image.fromarray(images[0]).save(buffer, "JPEG", quality=quality)
        out = c.corrupt("jpeg_compression", images, severity, rng())
        assert np.array_equal(out[0], np.asarray(Image.open(buffer)))
        errors.append(np.abs(out.astype(int) - images).mean())
    assert errors == sorted(errors)


def test_fog_plasma_maps_span_zero_to_one():
    maps = c.plasma_fractal(3, 32, 2.0, rng())
    assert maps.shape == (3, 32, 32) and np.allclose(maps.min(axis=(1, 2)), 0) and np.allclose(maps.max(axis=(1, 2)), 1)
    assert not np.allclose(maps[0], maps[1])


def test_equalised_histogram_spreads_over_the_full_range():
    image = np.repeat(np.arange(10, 20, dtype=np.uint8), 10).reshape(10, 10)
    out = c.equalise_histogram(image)
    assert out.min() == 0 and out.max() == 255 and np.all(np.diff(np.unique(out)) > 0)


# --- the subset, its cache and its scores ----------------------------------------------------


def test_subset_and_generation_are_fixed_by_the_data():
    data = tiny_data(40)
    assert np.array_equal(subset(data, 5), subset(data, 5)) and len(subset(data, 500)) == 40
    assert not np.array_equal(subset(data, 5), subset(tiny_data(40, seed=1), 5))
    first, second = generate(data, 2), generate(data, 2)
    assert first.images.shape == (len(c.CORRUPTIONS), 5, 2, 32, 32, 3)
    assert np.array_equal(first.images, second.images)


def test_the_cache_is_written_once_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path))
    data = tiny_data(40)
    made = corrupted_set(data, 2)
    folders = list((tmp_path / "cifar10-c").iterdir())
    assert len(folders) == 1 and f"-v{c.CODE_VERSION}-n2" in folders[0].name
    read = corrupted_set(data, 2)
    assert isinstance(read.images, np.memmap) and np.array_equal(read.images, made.images)
    assert np.array_equal(read.indices, made.indices)


def fake_set(k_names: tuple[str, ...], n: int) -> CorruptedSet:
    return CorruptedSet(np.arange(n), k_names, np.zeros((len(k_names), 5, n, 32, 32, 3), np.uint8))


def test_measure_averages_the_standard_corruptions_only():
    names = ("gaussian_noise", "contrast", "saturate")  # saturate is an extra
    n, labels = 4, np.array([0, 1, 2, 3])
    right = np.zeros((3, 5, n, 10))
    right[..., :] = -1
    for i in range(n):
        right[:, :, i, labels[i]] = 1
    right[1, 4, :, :] = 0  # contrast at severity 5: all wrong (argmax 0 only for image 0)
    right[1, 4, :, 9] = 1
    right[2] = 0  # saturate all predicting class 0: one of four right
    found = measure(fake_set(names, n), right.reshape(-1, 10), labels, [str(i) for i in range(10)])
    assert found.per_corruption == {"gaussian_noise": 1.0, "contrast": 0.8, "saturate": 0.25}
    assert found.per_severity == (1.0, 1.0, 1.0, 1.0, 0.5)
    assert found.mean_accuracy == pytest.approx(0.9) and found.n_per_cell == n
    assert found.mean_accuracy_ci[0] < 0.9 < found.mean_accuracy_ci[1]
    assert found.per_corruption_severity["contrast"] == (1.0, 1.0, 1.0, 1.0, 0.0)
    assert "frost" in found.left_out and found.regenerated
    assert Robustness.from_json(found.to_json()) == found


def test_results_round_trip_with_and_without_robustness(tmp_path):
    from tests.fixtures.make_results import graded

    plain = GradeResult.from_json(graded())
    assert plain.to_json()["robustness"] is None and GradeResult.from_json(plain.to_json()).robustness is None
    older = {k: v for k, v in plain.to_json().items() if k != "robustness"}  # written before the key existed
    assert GradeResult.from_json(older).robustness is None
    found = measure(fake_set(("fog",), 2), np.eye(10)[[0, 1] * 5], np.array([0, 1]), [str(i) for i in range(10)])
    back = GradeResult.from_json(plain.replace(robustness=found).to_json())
    assert back.robustness == found


def test_the_rubric_can_check_robustness_and_turns_it_on():
    assert metric_problem("robustness.mean_accuracy") is None
    assert metric_problem("robustness.per_corruption") is None
    assert metric_problem("robustness.mean") is not None
    rubric = parse_rubric({"check": [{"metric": "robustness.mean_accuracy", "condition": "x > 0.5"}]})
    plain = parse_rubric({"check": [{"metric": "accuracy", "condition": "x > 0.5"}]})
    assert robustness_size(None, rubric) == DEFAULT_N and robustness_size(None, plain) is None
    assert robustness_size(7, plain) == 7
    assert with_room(plain, None, 10_000) is plain
    widened = with_room(plain, 100, 10_000)  # 18 x 5 x 100 more images for a limit set for 10,000
    assert widened.limits.wall_seconds == pytest.approx(plain.limits.wall_seconds * 1.9)
    assert widened.checks == plain.checks and widened.limits.memory_mb == plain.limits.memory_mb


@pytest.mark.slow
def test_the_example_network_loses_accuracy_as_severity_rises(shared_copy, tmp_path, monkeypatch):
    from pathlib import Path

    from grader.data import load_cifar10
    from grader.pipeline import grade_one

    monkeypatch.setenv("GRADER_CACHE", str(tmp_path))
    data = load_cifar10(str(shared_copy))
    example = Path(__file__).resolve().parents[1] / "submissions" / "s2400001.pth"
    result = grade_one(example, data=data, sandbox=False, robustness=50)
    found = result.robustness
    assert found is not None and found.n_per_cell == 50
    severity = found.per_severity
    assert severity[0] > severity[2] > severity[4] and severity[0] - severity[4] > 0.05
    assert min(found.per_corruption.values()) < result.evaluation.accuracy - 0.1  # contrast, for this network
    assert len(found.examples) == 1 + len(c.CORRUPTIONS) and found.examples[0]["corruption"] == "clean"


def test_the_reports_show_the_section_only_when_it_was_measured():
    from grader.batch.classreport import render_class_html
    from grader.report.context import build_context
    from grader.report.render import render_html
    from grader.report.robustness_figures import class_section, submission_section
    from tests.fixtures.make_results import graded

    plain = GradeResult.from_json(graded())
    assert build_context(plain)["robustness"] is None
    found = measure(fake_set(("fog", "saturate"), 2), np.eye(10)[[0, 1] * 10], np.array([0, 1]),
                    [str(i) for i in range(10)], clean=natural(1)[0])
    measured = plain.replace(robustness=found)
    html = render_html(measured, lang="en")
    assert 'id="robustness"' in html and "not bit-identical to the published CIFAR-10-C" in html
    assert "Left out: frost" in html and "73.5%" in html
    assert html.count('class="thumb') >= 3 + len(plain.evaluation.samples)  # clean + the two corruptions
    from grader.commands.console import format_summary

    assert "under common corruptions" not in format_summary(plain)
    assert f"mean accuracy {found.mean_accuracy:.4f}" in format_summary(measured)
    chinese = submission_section(measured, "zh")
    assert "并非逐位相同" in chinese["t"]["rob_regenerated"] and chinese["examples"][1]["label"] == "雾"
    section = class_section([measured, plain, None], "en")
    assert section["summary"].startswith("1 of 2 graded submissions measured")
    assert class_section([plain], "en") is None
    page = render_class_html([], "en", figures=False, sections={"robustness": section})
    assert 'id="robustness"' in page and "mean corruption accuracy" in page


def test_canny_outlines_a_square_and_nothing_else():
    image = np.zeros((16, 16), np.uint8)
    image[4:12, 4:12] = 200
    edges = c.canny_edges(image, 50, 150)
    assert not edges[6:10, 6:10].any() and not edges[:2].any() and not edges[:, 14:].any()
    assert all(edges[row, 3:5].any() and edges[row, 11:13].any() for row in range(5, 11))  # thin left and right sides
    assert not c.canny_edges(np.full((16, 16), 90, np.uint8), 50, 150).any()


def test_grade_takes_robustness_with_or_without_n(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from grader.cli import main
    from grader.commands import grading

    seen = {}
    monkeypatch.setattr(grading, "grade_command", lambda **options: seen.update(options) or 0)
    hand_in = tmp_path / "s.pth"
    hand_in.write_bytes(b"weights")

    def grade(*args):
        seen.clear()
        return CliRunner().invoke(main, ["grade", *args, "--out", str(tmp_path / "out")])

    assert grade(str(hand_in), "--robustness").exit_code == 0 and seen["robustness"] == DEFAULT_N
    assert grade(str(hand_in), "--robustness", "7").exit_code == 0 and seen["robustness"] == 7
    assert grade(str(hand_in)).exit_code == 0 and seen["robustness"] is None
    refused = grade("--robustness", str(hand_in))
    assert refused.exit_code == 2 and "after SUBMISSION" in refused.output and not seen
    assert "at least 1" in grade(str(hand_in), "--robustness", "0").output


def test_a_batch_whose_rubric_checks_robustness_warms_the_set_and_widens_its_caps(monkeypatch, tmp_path):
    from grader.batch import run
    from grader.batch.worker import GradeSettings
    from grader.robustness import request

    monkeypatch.setenv("GRADER_CACHE", str(tmp_path))
    monkeypatch.setattr(request, "DEFAULT_N", 2)
    data = tiny_data(40)
    monkeypatch.setattr(run, "load_data", lambda settings: data)
    plain = parse_rubric({"check": [{"metric": "accuracy", "condition": "x > 0.5"}]})
    checked = parse_rubric({"check": [{"metric": "robustness.mean_accuracy", "condition": "x > 0.5", "points": 0}]})
    for rubric in (plain, checked):
        monkeypatch.setattr(run, "load_settings_rubric", lambda settings, rubric=rubric: rubric)
        plan = run.make_plan(GradeSettings(partial=True))
        if rubric is plain:
            assert not (tmp_path / "cifar10-c").exists()
            base = plan.limits.timeout_s
    assert len(list((tmp_path / "cifar10-c").iterdir())) == 1  # generated before any worker
    extra = len(c.CORRUPTIONS) * 5 * 2 / 40 * plain.limits.wall_seconds
    assert plan.limits.timeout_s == pytest.approx(base + extra)
