"""Take the screenshots of `pyllmattr serve` in docs/ (explorer.png, explorer-compare.png).

Runs the app on the default model and drives headless chromium through the page with
the test suite's DevTools client (tests/helpers/browser.py, hence tests/ on PYTHONPATH), as
tests/frontends/test_serve_browser.py does:

    pip install ".[serve,test]" && PYTHONPATH=tests python docs/explorer_screenshots.py
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
    page.wait_for(f"document.querySelectorAll('#history li').length > {history}")


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Server(port=0) as server,
        Chromium(Path(tmp), 1400, 1000) as page,
    ):
        page.goto(server.url)
        page.wait_for("document.body.dataset.ready === 'true'")
        page.type("#prompt", PROMPT)
        page.type("#target", " golf")
        run(page, "word", 0)
        page.screenshot(DOCS / "explorer.png")
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
    print(f"wrote {DOCS / 'explorer.png'} and {DOCS / 'explorer-compare.png'}")


if __name__ == "__main__":
    main()
