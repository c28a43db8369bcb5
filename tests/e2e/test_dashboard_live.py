"""The dashboard follows GET /api/changes in a real Chromium: a change shows without a reload and
without polling; a broken stream shows as reconnecting, then the page recovers and catches up."""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.test_dashboard import HOSTILE, browser, task_row, task_status, wait, wait_api
from tests.support import fake_anthropic as fm
from tests.support.server import Server, write_db

pytestmark = pytest.mark.xdist_group("browser")
__all__ = ["browser"]  # the module-scoped Chromium of the dashboard tests

API_CALLS = """
return performance.getEntriesByType("resource")
  .map((e) => new URL(e.name).pathname)
  .filter((p) => p.startsWith("/api/") && p !== "/api/changes");
"""


def conn_state(driver: WebDriver) -> str | None:
    return driver.find_element("id", "conn").get_attribute("data-state")


def api_calls(driver: WebDriver) -> list[str]:
    calls: list[str] = driver.execute_script(API_CALLS)
    return calls


def test_a_new_task_shows_without_a_reload_or_a_poll(server: Server, browser: WebDriver) -> None:
    server.client.post("/api/queue/settings", json={"key": "paused", "value": True})
    browser.get(server.url)
    wait(browser, lambda d: conn_state(d) == "live", what="the stream is followed")
    wait(browser, lambda d: "/api/tasks" in api_calls(d), what="the first read")
    time.sleep(0.5)
    before = api_calls(browser)
    time.sleep(4)  # twice the old polling period
    assert api_calls(browser) == before, "no request while nothing changes: no polling"
    browser.execute_script("window.__sameDocument = 1")

    task = server.client.post("/api/tasks", json={"title": "<i>seen live</i>"}).json()
    wait(browser, lambda d: task_row(d, task["id"]) is not None, timeout=10, what="the task appears")
    assert browser.execute_script("return window.__sameDocument") == 1, "no reload"
    new = api_calls(browser)[len(before) :]
    assert new.count("/api/tasks") == 1, new
    assert task_row(browser, task["id"]).find_elements("css selector", "i") == []  # type: ignore[union-attr]

    assert server.client.post(f"/api/queue/add/{task['id']}").status_code == 201
    wait(browser, lambda d: task_status(d, task["id"]) == "queued", timeout=10, what="its status follows")


def test_shows_reconnecting_while_the_stream_is_down_then_catches_up(
    server: Server, browser: WebDriver
) -> None:
    browser.get(server.url)
    wait(browser, lambda d: conn_state(d) == "live", what="the stream is followed")
    browser.execute_script("window.__sameDocument = 1")
    server.stop()
    wait(browser, lambda d: conn_state(d) == "reconnecting", timeout=30, what="reconnecting shown")
    assert "reconnecting" in browser.find_element("id", "conn").text
    server.start()
    task = server.client.post("/api/tasks", json={"title": "made while the page was away"}).json()
    wait(browser, lambda d: conn_state(d) == "live", timeout=60, what="live again")
    wait(browser, lambda d: task_row(d, task["id"]) is not None, timeout=10, what="caught up")
    assert browser.execute_script("return window.__sameDocument") == 1, "no reload"


def chart_summary(driver: WebDriver, chart: str) -> str:
    found = driver.find_elements("css selector", f"#{chart} svg")
    return (found[0].get_attribute("data-summary") or "") if found else ""


def test_charts_render_and_follow_a_finished_agent(
    server: Server, fake_model: fm.FakeAnthropic, browser: WebDriver
) -> None:
    browser.get(server.url)
    wait(browser, lambda d: chart_summary(d, "chart-types"), what="the charts are drawn")
    assert chart_summary(browser, "chart-types") == "No agent ended in the last 24 hours"
    assert chart_summary(browser, "chart-spend-hour") == "Spend in the last 24 hours: $0"
    assert len(browser.find_elements("css selector", "#chart-spend-hour svg rect.bar")) == 24
    assert len(browser.find_elements("css selector", "#chart-spend-day svg rect.bar")) == 14

    agent = server.wait_agent(server.spawn(f"hi {fake_model.scenario([fm.text('done')])}")["id"])
    assert agent["status"] == "completed" and agent["cost_usd"]
    wait(
        browser,
        lambda d: chart_summary(d, "chart-types").startswith("coding: 100% of 1 ended completed"),
        timeout=30,  # the figures are kept 5 s, the charts re-read at most every 5 s
        what="the finished agent is counted",
    )
    spent = chart_summary(browser, "chart-spend-hour")
    assert spent != "Spend in the last 24 hours: $0" and spent.endswith(f"${agent['cost_usd']:.4f}"), spent

    chart = browser.find_element("css selector", "#chart-spend-hour svg")  # keyboard: focus, then arrows
    browser.execute_script("arguments[0].focus()", chart)
    readout = browser.find_element("id", "chart-spend-hour-readout")
    now_hour = readout.text
    ended = datetime.fromisoformat(agent["completed_at"].replace("Z", "+00:00"))
    ended_label = ended.replace(minute=0, second=0, microsecond=0).astimezone().strftime("%H:%M")
    if not now_hour.startswith(ended_label):  # the hour turned since the agent ended: its bar is one back
        chart.send_keys(Keys.ARROW_LEFT)
    ended_hour = readout.text
    assert ended_hour == f"{ended_label}: ${agent['cost_usd']:.4f}", ended_hour
    chart.send_keys(Keys.ARROW_LEFT)
    assert readout.text != ended_hour and readout.text.endswith("$0"), readout.text
    chart.send_keys(Keys.END)
    assert readout.text == now_hour


HISTORY_TYPES = ("coding", "reviewer", "verifier", "starter", "deployer")


def _history(hours: int = 24) -> list[str]:
    """Agents over the past day, for a screenshot with something to show."""
    now = datetime.now(UTC)
    rows = []
    for n in range(60):
        start = now - timedelta(hours=hours * random.random())
        end = min(now, start + timedelta(minutes=4 + 30 * random.random()))
        kind = HISTORY_TYPES[n % len(HISTORY_TYPES)]
        status = "failed" if random.random() < 0.2 else "completed"
        cost = round(0.05 + random.random() * 0.9, 4)
        created, ended = (t.isoformat(timespec="milliseconds").replace("+00:00", "Z") for t in (start, end))
        rows.append(
            "INSERT INTO agents (id, agent_type, status, prompt, timeout_seconds, max_turns, runtime,"
            " created_at, updated_at, started_at, completed_at, cost_usd, duration_ms) VALUES"
            f" ('{kind}-h{n:03d}', '{kind}', '{status}', 'p', 60, 5, 'host', '{created}', '{ended}',"
            f" '{created}', '{ended}', {cost}, {int((end - start).total_seconds() * 1000)})"
        )
    return rows


def test_charts_readable_at_1280_and_on_a_phone(server: Server, browser: WebDriver) -> None:
    """Saved to $ORCHESTRATOR_SCREENSHOT's directory as `dashboard-charts.png` and
    `dashboard-charts-phone.png` when it is set."""
    random.seed(18)
    history = _history()
    write_db(server, *history)
    target = os.environ.get("ORCHESTRATOR_SCREENSHOT")
    try:
        for width, name in ((1280, "dashboard-charts.png"), (375, "dashboard-charts-phone.png")):
            browser.set_window_size(width, 1000)
            browser.get(server.url)
            wait(browser, lambda d: "coding:" in chart_summary(d, "chart-types"), what="the charts are drawn")
            scroll, inner = browser.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert scroll <= inner, f"nothing wider than the screen at {width} px"
            for svg in browser.find_elements("css selector", "#charts svg"):
                assert 0 < svg.rect["width"] <= inner
            assert len(browser.find_elements("css selector", "#charts figure")) == 4
            if target:
                charts = browser.find_element("id", "charts")
                browser.execute_script("arguments[0].scrollIntoView()", charts)
                height = browser.execute_script("return document.documentElement.scrollHeight")
                browser.set_window_size(width, min(height + 120, 2400) if width < 600 else 1000)
                time.sleep(0.6)
                assert browser.save_screenshot(str((Path(target).parent / name).resolve()))
        # an agent type is the store's text like any other: shown as text, never as markup
        write_db(server, history[0].replace("'coding'", f"'{HOSTILE}'").replace("coding-h000", "hostile-1"))

        def listed() -> bool:  # the API keeps an answer FRESH_SECONDS: the page loads after it has the row
            stats = server.client.get("/api/stats", params={"hours": 24, "days": 14}).json()
            return any(t["agent_type"] == HOSTILE for t in stats["by_type"])

        wait_api(listed, what="the stats list the hostile type")
        browser.get(server.url)
        wait(browser, lambda d: HOSTILE in chart_summary(d, "chart-types"), what="the hostile type is listed")
        assert HOSTILE in browser.find_element("css selector", "#chart-types svg").text
        assert browser.find_elements("css selector", "#charts img") == []
        assert browser.execute_script("return window.__pwned") is None
    finally:
        browser.set_window_size(1440, 1000)
