"""The dashboard follows GET /api/changes in a real Chromium: a change shows without a reload and
without polling; a broken stream shows as reconnecting, then the page recovers and catches up."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.test_dashboard import browser, task_row, task_status, wait
from tests.support.server import Server

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
