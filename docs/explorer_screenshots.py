"""Take the screenshots of `pyllmattr serve` in docs/ (explorer.png, explorer-compare.png,
explorer-gradients.png).

Runs the app on the default model and drives headless chromium through the page with
the test suite's DevTools client (tests/helpers/browser.py, hence tests/helpers on
PYTHONPATH), as tests/frontends/test_serve_browser.py does:

    pip install ".[serve,torch,test]"
    PYTHONPATH=tests/helpers python docs/explorer_screenshots.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from browser import Chromium

from pyllmattr.serve import Server

DOCS = Path(__file__).resolve().parent

PROMPT = "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include"
CONTEXT = (
    "Dave grew up in Ohio. He moved to Palm Coast, FL after law school. He works as a lawyer "
    "for a small firm. On weekends he plays golf with his brother. He also cooks Italian food."
)


def run(page, features: str, history: int) -> None:
    page.choose("#features", features)
    page.click("#run")
    page.wait_for(
        f"document.querySelectorAll('#history li').length > {history} "
        "|| !document.getElementById('error').hidden",
        timeout=1800,  # a busy machine: only the condition ends the wait
    )
    error = page.js("document.getElementById('error').hidden ? '' : error.textContent")
    if error:
        raise RuntimeError(f"the page reported: {error}")


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Server(port=0, n_threads=2) as server,
        Chromium(Path(tmp), 1400, 1000) as page,
    ):
        page.goto(server.url)
        page.wait_for("document.body.dataset.ready === 'true'")
        # A contrastive run with its faithfulness measured (the curves under the run).
        page.type("#prompt", PROMPT)
        page.type("#target", " golf")
        page.type("#contrast", " tennis")
        page.click("#evaluate")
        run(page, "word", 0)
        page.screenshot(DOCS / "explorer.png")
        # A context's sentences, then both runs side by side.
        page.click("#evaluate")
        page.type("#contrast", "")
        page.click("input[name='mode'][value='context']")
        page.type("#context", CONTEXT)
        page.type("#question", "What does Dave do on weekends?")
        page.type("#target", " He plays golf")
        run(page, "sentence", 1)
        page.click("#history li:nth-child(1) input")
        page.click("#history li:nth-child(2) input")
        page.click("#compare")
        page.wait_for("document.querySelectorAll('#comparison .column').length === 2")
        page.js("document.getElementById('comparison').scrollIntoView()")
        page.screenshot(DOCS / "explorer-compare.png")
        # Integrated gradients on PyTorch (the same GGUF) over a template's slots, every
        # slot token replaced by token 0 on the path's start, points doubled until settled.
        page.click("#history li:nth-child(1) input")  # untick both: the comparison goes
        page.click("#history li:nth-child(2) input")
        page.click("#compare")
        page.click("input[name='mode'][value='prompt']")
        page.choose("#features", "template")
        page.type("#template", "{name} works as a {job} in {city} and every day walks to the")
        page.type("#values", "name = Dave\njob = lawyer\ncity = Palm Coast")
        page.type("#target", " shop")
        page.choose("#method", "integrated-gradients")
        page.type("#options input[name='n_steps']", "auto")
        page.type("#options input[name='baselines']", "0")
        run(page, "template", 2)
        page.js("window.scrollTo(0, 0)")
        page.screenshot(DOCS / "explorer-gradients.png")
    print(f"wrote explorer.png, explorer-compare.png and explorer-gradients.png in {DOCS}")


if __name__ == "__main__":
    main()
