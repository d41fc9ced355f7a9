"""The HTML view, rendered by a real browser (headless chromium) and checked on screen."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

import pyllmattr as pla

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The strongest attributions' backgrounds: blue (raises) and red (lowers) at 85 % opacity on white.
BLUE = 0.85 * np.array([33, 102, 172]) + 0.15 * 255
RED = 0.85 * np.array([178, 24, 43]) + 0.15 * 255


def browser() -> str:
    """The browser's path. Missing, the test is skipped on a developer's machine and
    fails in CI (``CI=true``, set by .ci/run), where a skip would pass unnoticed."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    reason = "no chromium binary found (Debian: apt-get install chromium); .ci/run installs it"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason}; in CI (CI={os.environ['CI']}) the browser check must run")
    pytest.skip(reason)


def screenshot(page, png, tmp_path) -> np.ndarray:
    done = subprocess.run(
        [
            browser(),
            "--headless",
            "--no-sandbox",  # needed when running as root (CI containers)
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=900,300",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and png.exists(), done.stderr
    import matplotlib.image

    return matplotlib.image.imread(png)[..., :3] * 255


def pixels_near(image: np.ndarray, color: np.ndarray, tolerance: float = 8) -> int:
    return int(np.all(np.abs(image - color) <= tolerance, axis=-1).sum())


def test_the_page_shows_features_in_diverging_colors(tmp_path):
    result = pla.AttributionResult(
        seq_attr=np.array([2.0, 0.1, -2.0, 0.5]),
        token_attr=None,
        input_features=["Dave", "lives in", "Palm Coast", "FL"],
        output_tokens=[" a", " lawyer"],
        target_logprob=-3.2,
        target_token_logprobs=np.array([-1.0, -2.2]),
        method="FeatureAblation",
        prompt_segments=[
            ("Dave", 0), (" ", None), ("lives in", 1), (" ", None), ("Palm Coast", 2),
            (", ", None), ("FL", 3), (" and is", None),
        ],
    )  # fmt: skip
    page = tmp_path / "view.html"
    result.to_html(page)
    image = screenshot(page, tmp_path / "view.png", tmp_path)
    assert image.shape[:2] == (300, 900)
    # Each highlight is a text-high box several characters wide: hundreds of pixels.
    assert pixels_near(image, BLUE) > 300, "no blue highlight of the feature that raises the target"
    assert pixels_near(image, RED) > 300, "no red highlight of the feature that lowers it"
    dark = np.all(image < 90, axis=-1).sum()
    assert dark > 200, "no text drawn"


def test_a_blank_page_has_no_highlights(tmp_path):
    """The measure above tells a page without highlights apart."""
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body><p>Dave lives in Palm Coast</p></body></html>")
    image = screenshot(page, tmp_path / "blank.png", tmp_path)
    assert pixels_near(image, BLUE) == 0 and pixels_near(image, RED) == 0
