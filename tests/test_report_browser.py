"""The report and the live UI in a real browser: Playwright driving the system Chromium.

Playwright cannot download its own browser here; it drives Debian's ``chromium``
(``apt-get install -y chromium``). Without it these tests skip, saying so.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from report_tapes import (
    PROBE_CLOSE,
    PROBE_IMG,
    PROBE_SCRIPT,
    chat_agent,
    record_chat,
    scripted,
)
from seamtape import sim, wire
from seamtape._steps import steps_of
from seamtape.faces.report import render_report, write_report
from seamtape.faces.report.live import LiveServer
from seamtape.lenses.diff import diff
from seamtape.tape import Tape

CHROMIUM = os.environ.get("SEAMTAPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LONG = "Plan a long weekend in Lisbon. " * 60
CALL = [{"name": "get_weather", "arguments": {"city": "Lisbon"}}]
FINAL = "Sunny all weekend."

if not os.path.exists(CHROMIUM):
    pytestmark = pytest.mark.skip(
        reason=f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` to run the browser tests"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` to run these")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """A browser page that fails the test on any script error or console error (a blocked
    script, a refused connection) it saw."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console: {msg.text}") if msg.type == "error" else None
            ),
        )

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready]", state="attached")
        return self.page

    def leave(self) -> None:
        """Leave a live page before its server stops (its event stream would retry)."""
        self.page.goto("about:blank")

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).first.text_content())


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    opened = Page(browser)
    yield opened
    opened.context.close()
    assert opened.problems == []


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A five-step run (bodies over 1 KiB, so gzipped deltas), a fork of it at step 2,
    a blame result and lint findings for it, and the report made from them."""
    from seamtape.engine.fork import fork

    folder = tmp_path_factory.mktemp("browser")
    tape = folder / "chat.tape"
    with sim.serve(scripted(CALL, CALL, CALL, CALL, FINAL)) as server:
        run = record_chat(tape, server.anthropic_base_url, LONG)
        branch = fork(
            tape,
            run,
            step=2,
            agent=chat_agent(LONG),
            edit={"text": "Rain. Stay home.", "tool_calls": []},
            upstream=server.anthropic_base_url,
        )
    blame = {
        "run_id": run,
        "parent_success": True,
        "perturb": "resample",
        "threshold": 0.5,
        "trials": 24,
        "live_calls": 61,
        "cost_usd": 0.012345,
        "budget": None,
        "stopped": "settled",
        "steps": [
            _blamed(2, 8, 0.8, 0.6, 0.95, "cause"),
            _blamed(3, 8, 0.5, 0.2, 0.9, "uncertain"),
            _blamed(1, 8, 0.1, 0.02, 0.3, "not the cause"),
            {**_blamed(4, 0, 0.0, 0.0, 1.0, "unmeasured"), "note": "the budget ran out"},
            {**_blamed(5, 0, 0.0, 0.0, 1.0, "unmeasured"), "note": "the budget ran out"},
        ],
    }
    lint = [
        {
            "rule": "tool-loop",
            "severity": "warning",
            "steps": [2, 3],
            "message": "the same tool call twice",
            "run": None,
        }
    ]
    out = write_report(folder / "report.html", render_report([tape], blame=blame, lint=lint))
    return {"tape": tape, "run": run, "fork": branch.run_id, "report": out, "blame": blame}


def _blamed(step: int, trials: int, rate: float, low: float, high: float, verdict: str) -> Any:
    return {
        "step": step,
        "trials": trials,
        "flips": round(rate * trials),
        "flip_rate": rate,
        "low": low,
        "high": high,
        "cs_low": low,
        "cs_high": high,
        "verdict": verdict,
        "live_calls": 3 * trials,
        "cost_usd": 0.001 * trials,
        "skipped_identical": 0,
        "errors": 0,
        "note": "",
    }


def _url(chat: dict[str, Any], fragment: str = "") -> str:
    return chat["report"].as_uri() + fragment


def _selected(page: Any) -> int:
    return int(page.locator("#steps .step.selected").get_attribute("data-seq"))


def test_clicking_a_step_shows_it_decoded_and_its_raw_bytes(
    page: Page, chat: dict[str, Any]
) -> None:
    with Tape(chat["tape"]) as t:
        step3 = steps_of(t, chat["run"])[2]
        exchange = t.exchanges(chat["run"])[2]
        request, response = exchange.request_bytes(), exchange.response_bytes()
    assert step3 is not None
    p = page.open(_url(chat))
    p.click('#steps .step[data-seq="3"]')
    assert page.text("#step-title").startswith("Step 3 · anthropic · sim-claude")
    facts = page.text("#step-facts")
    assert f"{step3.usage.input_tokens} in / {step3.usage.output_tokens} out" in facts
    assert f"${wire.cost(step3):.6f}" in facts
    conversation = page.text("#conversation")
    assert "Plan a long weekend in Lisbon." in conversation and "Lisbon: 21°C" in conversation
    assert "get_weather(" in page.text("#answer")
    assert "step=3" in p.evaluate("location.hash")
    # Step 3's request is stored as a gzip delta against step 2's: decoded in the page.
    p.click("#raw-toggle")
    p.wait_for_selector("#raw-request")
    assert json.loads(page.text("#raw-request")) == json.loads(request)
    assert json.loads(page.text("#raw-response")) == json.loads(response)
    assert "content-type" in page.text("#raw")


def test_keys_move_between_steps_and_the_fragment_names_the_step(
    page: Page, chat: dict[str, Any]
) -> None:
    p = page.open(_url(chat))
    p.click('#steps .step[data-seq="3"]')
    p.keyboard.press("j")
    assert _selected(p) == 4 and "step=4" in p.evaluate("location.hash")
    p.keyboard.press("ArrowUp")
    p.keyboard.press("k")
    assert _selected(p) == 2 and page.text("#step-title").startswith("Step 2")
    fresh = page.open(_url(chat, f"#run={chat['run']}&step=5"))
    assert _selected(fresh) == 5 and page.text("#step-title").startswith("Step 5")
    assert FINAL in page.text("#answer")


def test_search_finds_the_steps_whose_decoded_text_matches(
    page: Page, chat: dict[str, Any]
) -> None:
    p = page.open(_url(chat))
    p.keyboard.press("/")
    p.keyboard.type("sunny all")
    assert page.text("#search-count") == "1 of 5 steps"
    visible = p.locator("#steps .step:not(.hidden)")
    assert visible.count() == 1 and visible.get_attribute("data-seq") == "5"
    p.keyboard.press("Enter")
    assert _selected(p) == 5


def test_blame_bars_are_drawn_at_their_intervals_against_the_threshold(
    page: Page, chat: dict[str, Any]
) -> None:
    p = page.open(_url(chat))
    assert "Step 2 is the cause" in page.text("#blame-headline")
    assert "61 live calls · $0.0123 spent" in page.text("#blame-cost")
    for entry in chat["blame"]["steps"]:
        row = p.locator(f'.blame-row[data-step="{entry["step"]}"]')
        track = row.locator(".track").bounding_box()
        threshold = row.locator(".threshold").bounding_box()
        assert threshold["x"] == pytest.approx(track["x"] + 0.5 * track["width"], abs=2)
        assert entry["verdict"] in str(row.text_content())
        if entry["trials"] == 0:
            assert row.locator(".interval").count() == 0
            assert "unmeasured: the budget ran out" in str(row.text_content())
            continue
        bar = row.locator(".interval").bounding_box()
        left = track["x"] + entry["cs_low"] * track["width"]
        width = (entry["cs_high"] - entry["cs_low"]) * track["width"]
        assert bar["x"] == pytest.approx(left, abs=1.5)
        assert bar["width"] == pytest.approx(width, abs=1.5)
        tick = row.locator(".rate").bounding_box()
        assert tick["x"] + tick["width"] / 2 == pytest.approx(
            track["x"] + entry["flip_rate"] * track["width"], abs=2
        )
    assert p.locator('#steps .step[data-seq="2"] .badge.cause').count() == 1
    p.click('.blame-row[data-step="3"]')
    assert _selected(p) == 3 and "Blame: uncertain" in page.text("#step-pane")


def test_lint_findings_sit_on_the_steps_they_name(page: Page, chat: dict[str, Any]) -> None:
    p = page.open(_url(chat))
    flagged = [
        s.get_attribute("data-seq")
        for s in p.locator("#steps .step").all()
        if "1 lint" in str(s.text_content())
    ]
    assert flagged == ["2", "3"]
    p.click('#steps .step[data-seq="3"]')
    assert "tool-loop" in page.text("#step-pane") and "the same tool call twice" in page.text(
        "#step-pane"
    )
    p.locator("#lint-list a", has_text="2").click()
    assert _selected(p) == 2


def test_the_diff_of_a_fork_marks_its_first_divergence(page: Page, chat: dict[str, Any]) -> None:
    expected = diff(chat["tape"], run_a=chat["run"], run_b=chat["fork"])
    assert expected.first is not None and expected.first.a is not None
    p = page.open(_url(chat))
    p.click("#tab-diff")
    first = p.locator("#diff-table tr.first")
    assert first.count() == 1
    assert first.locator("td").nth(0).text_content() == str(expected.first.a.seq)
    assert "first divergence" in str(first.text_content())
    assert page.text("#diff-summary").startswith(
        f"First divergence: step {expected.first.a.seq} of A"
    )
    rows = p.locator("#diff-table tr[data-pair]")
    assert rows.count() == len(expected.pairs)
    first.locator("a").first.click()
    assert page.text("#step-title").startswith(f"Step {expected.first.a.seq}")


def _probe_tape(folder: Path) -> Path:
    tape = folder / "probe.tape"
    policy = scripted(
        [{"name": "get_weather", "arguments": {"city": PROBE_IMG}}], PROBE_SCRIPT + PROBE_CLOSE
    )
    with sim.serve(policy) as server:
        record_chat(
            tape,
            server.anthropic_base_url,
            PROBE_SCRIPT + PROBE_IMG,
            name=PROBE_CLOSE,
            tool_prefix=PROBE_IMG,
        )
    return tape


def _assert_probes_inert(page: Page) -> None:
    p = page.page
    for seq in ("1", "2"):
        p.click(f'#steps .step[data-seq="{seq}"]')
        p.click("#raw-toggle")
        p.wait_for_selector("#raw-request")
        shown = page.text("#step-pane")
        assert PROBE_SCRIPT in shown and PROBE_IMG in shown  # shown as the text it is
    assert p.evaluate("window.__xss") is None
    assert p.evaluate("document.querySelectorAll('img').length") == 0
    assert p.evaluate("document.scripts.length") == 3  # config, data and the page's own
    # The control: the same probe put in as markup is caught by the check above.
    p.evaluate(
        "probe => { const d = document.createElement('div'); d.innerHTML = probe; document.body.append(d) }",
        PROBE_IMG,
    )
    assert p.evaluate("document.querySelectorAll('img').length") == 1


def test_markup_in_a_tape_is_shown_as_text_and_never_runs(page: Page, tmp_path: Path) -> None:
    tape = _probe_tape(tmp_path)
    out = write_report(tmp_path / "probe.html", render_report([tape]))
    page.open(out.as_uri())
    assert PROBE_CLOSE in page.text("#run-tree")
    _assert_probes_inert(page)
    # The control's markup was blocked from running by the page's policy: it says so.
    assert any("Content Security Policy" in problem for problem in page.problems)
    page.problems.clear()


def test_serve_shows_a_step_appear_while_a_run_records(page: Page, tmp_path: Path) -> None:
    tape = tmp_path / "live.tape"
    gate = threading.Event()
    with sim.serve(scripted(CALL, CALL, FINAL)) as upstream, LiveServer([tape], port=0) as live:
        p = page.open(live.url)
        assert p.locator("#steps .step").count() == 0
        recorder = threading.Thread(
            target=record_chat,
            args=(tape, upstream.anthropic_base_url, "Weather?"),
            kwargs={"gate": gate},
        )
        recorder.start()
        try:
            p.wait_for_selector('#steps .step[data-seq="1"]')
            assert p.locator("#steps .step").count() == 1
            assert p.locator("#run-tree .badge.recording").count() == 1
        finally:
            gate.set()
            recorder.join(timeout=60)
        p.wait_for_selector('#steps .step[data-seq="3"]')
        p.wait_for_selector("#run-tree .badge.complete")
        assert p.locator("#steps .step").count() == 3
        page.leave()


def test_a_fork_made_from_the_page_runs_the_agent_and_joins_the_tree(
    page: Page, tmp_path: Path
) -> None:
    tape = tmp_path / "fork.tape"
    with sim.serve(scripted(CALL, CALL, FINAL)) as upstream:
        run = record_chat(tape, upstream.anthropic_base_url, "Weather?")
        with LiveServer(
            [tape], port=0, agent=chat_agent("Weather?"), upstream=upstream.anthropic_base_url
        ) as live:
            p = page.open(live.url)
            p.click('#steps .step[data-seq="2"]')
            p.fill("#fork-text", "Rain. Stay home.")
            p.fill("#fork-calls", "[]")
            p.click("#fork-button")
            p.wait_for_selector("#notice:has-text('forked: run')")
            p.wait_for_selector("#run-tree .run:has-text('@ step 2')")
            new_id = page.text("#notice").split("run ")[1].split(" ")[0]
            # the page moves to the new run once the live update that carries it arrives
            p.wait_for_selector(f"#title:has-text('{new_id}')")
            assert new_id in page.text("#title")
            page.leave()
    with Tape(tape) as t:
        info = t.run(new_id)
        steps = steps_of(t, new_id)
    assert (info.parent, info.fork_step) == (run, 2)
    assert steps[1] is not None and steps[1].text == "Rain. Stay home." and not steps[1].tool_calls
    assert info.result == {"answer": "Rain. Stay home.", "turns": 2}


def test_the_live_page_escapes_what_a_tape_holds(page: Page, tmp_path: Path) -> None:
    tape = _probe_tape(tmp_path)
    with LiveServer([tape], port=0) as live:
        page.open(live.url)
        _assert_probes_inert(page)
        page.leave()
    assert any("Content Security Policy" in problem for problem in page.problems)
    page.problems.clear()


def test_the_demo_report_opens_on_its_blame_panel(page: Page, tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from seamtape.faces._demo import run_demo

    run_demo(tmp_path, console=Console(file=io.StringIO()))
    blamed = json.loads((tmp_path / "blame.json").read_text(encoding="utf-8"))
    p = page.open((tmp_path / "report.html").as_uri())
    rows = p.locator(".blame-row")
    assert rows.count() == len(blamed["steps"]) == 3
    for i, entry in enumerate(blamed["steps"]):
        assert rows.nth(i).get_attribute("data-step") == str(entry["step"])
        assert entry["verdict"] in str(rows.nth(i).text_content())
    unmeasured = [s for s in blamed["steps"] if s["verdict"] == "unmeasured"]
    assert p.locator(".blame-row.unmeasured").count() == len(unmeasured)
    assert "Blame re-ran it" in page.text("#blame-section")
    assert p.locator("#run-tree .run").count() >= 2  # the run and its forks


def test_a_stream_shows_its_chunk_timing(page: Page, tmp_path: Path) -> None:
    import seamtape

    tape = tmp_path / "stream.tape"
    with (
        sim.serve(scripted("A long streamed answer, " * 20)) as server,
        seamtape.record(tape, upstream=server.anthropic_base_url) as session,
        session.httpx2_client() as http,
    ):
        http.post(
            f"{session.upstream}/v1/messages",
            json={
                "model": "sim-claude",
                "max_tokens": 400,
                "stream": True,
                "messages": [{"role": "user", "content": "Talk."}],
            },
        )
    with Tape(tape) as t:
        (exchange,) = t.exchanges(t.run().id)
    chunks = exchange.chunks or []
    assert len(chunks) > 2
    page.open(write_report(tmp_path / "s.html", render_report([tape])).as_uri())
    facts = page.text("#step-facts")
    first = math.floor(round(chunks[0][1], 2) + 0.5)  # as the page rounds: Math.round
    assert f"stream{len(chunks)} chunks · first after {first} ms" in facts
    assert page.page.locator(".spark i").count() == len(chunks) - 1
