"""Take the README's screenshots of the report and the live UI: web/screenshot-*.png.

Runs the demo into a temporary folder (its report has the blame panel and a fork), opens
the report in headless Chromium, and photographs the step view, the raw bytes, and the
diff of the demo's fork; then serves the demo tape live with the demo's agent and
photographs the fork form.

    python scripts/screenshots.py [--out web]
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from rich.console import Console

from seamtape import sim
from seamtape.faces._demo import run_demo, trip_agent
from seamtape.faces.report import load_blame
from seamtape.faces.report.live import LiveServer

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "web")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="seamtape-shots-"))
    tape = run_demo(folder, console=Console(file=io.StringIO()))
    report = folder / "report.html"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 860})
        page.goto(report.as_uri())
        page.wait_for_selector("body[data-ready]", state="attached")
        page.click('#steps .step[data-seq="2"]')
        page.screenshot(path=args.out / "screenshot-report.png")
        page.click("#raw-toggle")
        page.wait_for_selector("#raw-request")
        page.locator("#raw").scroll_into_view_if_needed()
        page.screenshot(path=args.out / "screenshot-raw.png")
        page.click("#tab-diff")
        page.screenshot(path=args.out / "screenshot-diff.png")
        with (
            sim.serve(sim.StochasticPolicy(seed=7, tools_plan=["get_weather", "find_hotel"])) as up,
            LiveServer(
                [tape],
                port=0,
                agent=trip_agent,
                upstream=up.anthropic_base_url,
                blame=load_blame(folder / "blame.json"),
            ) as live,
        ):
            page.goto(live.url)
            page.wait_for_selector("body[data-ready]", state="attached")
            page.click('#steps .step[data-seq="2"]')
            page.fill("#fork-text", "No hotel fits that budget; try another weekend.")
            page.fill("#fork-calls", "[]")
            page.locator("#fork-button").scroll_into_view_if_needed()
            page.screenshot(path=args.out / "screenshot-serve.png")
            page.goto("about:blank")
        browser.close()
    for name in ("report", "raw", "diff", "serve"):
        print(args.out / f"screenshot-{name}.png")


if __name__ == "__main__":
    main()
