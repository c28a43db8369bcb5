"""The dashboard's task page in a real headless Chromium: a task that went through plan → code → review
(a real workflow: real `claude` agents, real git, the fake GitHub), its timeline, PR and diff; hostile
titles and diffs shown as text; keyboard use and a phone-width viewport."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import ServerFactory
from tests.e2e.test_dashboard import browser, task_row, wait  # noqa: F401 (browser: the fixture)
from tests.e2e.test_task_page_api import HOSTILE_LINES, branch_with, task_on
from tests.e2e.test_workflow import (
    APPROVE,
    CODING,
    DEPLOYER,
    PLAN,
    REVIEWER,
    STARTER,
    VERIFIER,
    _queue_task,
    _wait_task,
    commit,
    outcome,
)
from tests.support import fake_anthropic as fm
from tests.support.repos import git, remote_with_project
from tests.support.server import Server, write_db

pytestmark = pytest.mark.xdist_group("browser")

HOSTILE_TITLE = '<img src=x onerror="window.__pwned=3"></script>'


def bars(driver: WebDriver) -> list[tuple[str, str]]:
    """(type, status) of each agent's bar, read in one go (the page redraws while a task runs)."""
    found = driver.execute_script(
        "return [...document.querySelectorAll('#tp-timeline g.bar[data-agent-id]')]"
        ".map((b) => [b.dataset.agentType, b.dataset.status])"
    )
    return [(str(kind), str(status)) for kind, status in found]


def diff_paths(driver: WebDriver) -> list[str]:
    return [
        d.get_attribute("data-path") or "" for d in driver.find_elements(By.CSS_SELECTOR, "#tp-diff details")
    ]


def open_task(driver: WebDriver, server: Server, task_id: str) -> None:
    driver.get(f"{server.url}/#/tasks/{task_id}")
    page = driver.find_element(By.ID, "task-page")
    wait(driver, lambda d: page.get_attribute("data-state") == "loaded", what="the task page loads")


def test_a_task_through_plan_code_review_on_its_page(
    make_server: ServerFactory,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    browser: WebDriver,  # noqa: F811
) -> None:
    marker = fake_model.roles(
        {
            STARTER: [[PLAN]],
            CODING: [
                [
                    commit("calc.py", "def add(a, b): return a + b", "Write calc"),
                    outcome({"summary": "calc"}),
                ],
                [commit("test_calc.py", "import calc", "Test calc"), outcome({"summary": "its test"})],
            ],
            REVIEWER: [
                [outcome({"verdict": "changes_requested", "comments": ["add a test for add()"]})],
                [APPROVE],
            ],
            DEPLOYER: [[outcome({"deployed": True, "details": "a library"})]],
            VERIFIER: [[outcome({"passed": True, "evidence": ["it imports"]})]],
        }
    )
    server = make_server(**workflow_env, WORKSPACE_CLEANUP="never")
    task_id = _queue_task(server, f"Write calc.add. {marker}")
    open_task(browser, server, task_id)  # watched from its start: the bars come as the stages do
    seen: list[int] = []
    deadline = time.monotonic() + 150
    count = "return document.querySelectorAll('#tp-timeline g.bar[data-agent-id]').length"
    while browser.find_element(By.ID, "tp-status").get_attribute("data-status") != "completed":
        assert time.monotonic() < deadline, f"the page never showed the task completed: {seen}"
        seen.append(int(browser.execute_script(count)))
        time.sleep(0.2)
    assert _wait_task(server, task_id)["status"] == "completed"
    assert len(set(seen)) >= 3, f"the timeline grew stage by stage: {sorted(set(seen))}"

    browser.get(server.url)
    link = f'#tasks tr[data-task-id="{task_id}"] a.task-link'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, link), what="the task listed with a link")
    browser.find_element(By.CSS_SELECTOR, link).send_keys(Keys.ENTER)  # the keyboard opens it
    wait(browser, lambda d: d.find_element(By.ID, "task-page").get_attribute("data-state") == "loaded")
    assert not browser.find_element(By.ID, "agents-panel").is_displayed(), "the lists make way for the page"
    assert browser.find_element(By.ID, "tp-title").text == "Add calc"
    assert browser.find_element(By.ID, "tp-status").get_attribute("data-status") == "completed"

    wait(browser, lambda d: len(bars(d)) == 7, what="a bar per agent")
    kinds = ["starter", "coding", "reviewer", "coding", "reviewer", "deployer", "verifier"]
    assert bars(browser) == [(kind, "completed") for kind in kinds]
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#tp-timeline .row-label")]
    assert labels == ["plan", "code", "review", "fix-up 1", "review 2", "deploy", "verify", "waits"]
    titles = [
        t.get_attribute("textContent")
        for t in browser.find_elements(By.CSS_SELECTOR, "#tp-timeline g.bar title")
    ]
    assert titles[0].startswith("plan (starter agent") and titles[1].startswith("code (coding agent")
    assert titles[2].startswith("review (reviewer agent")
    assert browser.find_elements(By.CSS_SELECTOR, "#tp-timeline g.bar.wait"), "the checks wait is drawn"
    detail = browser.find_element(By.ID, "tp-bar-detail")
    first_bar = browser.find_element(By.CSS_SELECTOR, "#tp-timeline g.bar[data-agent-type='coding']")
    browser.execute_script("arguments[0].focus()", first_bar)
    wait(
        browser,
        lambda d: detail.text.startswith("code (coding agent"),
        what="a focused bar tells its details",
    )

    timeline = server.client.get(f"/api/tasks/{task_id}/timeline").json()
    assert browser.find_element(By.ID, "tp-cost").text == f"${timeline['cost_usd']:.4f}"
    pr = browser.find_element(By.CSS_SELECTOR, "#tp-pr a")
    assert pr.text == "#1" and (pr.get_attribute("href") or "").startswith("http")
    assert browser.find_element(By.ID, "tp-checks").text in ("passed", "none to wait for")
    assert browser.find_element(By.ID, "tp-merge").text == "merged"
    assert browser.find_element(By.ID, "tp-review").text.startswith("approved")
    events = [
        r.get_attribute("data-type") for r in browser.find_elements(By.CSS_SELECTOR, "#tp-events tbody tr")
    ]
    assert "pr.created" in events and "verify.passed" in events

    wait(
        browser,
        lambda d: d.find_element(By.ID, "tp-diff").get_attribute("data-state") == "loaded",
        what="diff",
    )
    assert sorted(diff_paths(browser)) == ["calc.py", "test_calc.py"]
    added = [
        e.text
        for e in browser.find_elements(By.CSS_SELECTOR, '#tp-diff details[data-path="calc.py"] .dl.add')
    ]
    assert added == ["+def add(a, b): return a + b"]
    assert browser.find_elements(By.CSS_SELECTOR, '#tp-diff details[data-path="calc.py"] .tk-keyword')

    target = os.environ.get("ORCHESTRATOR_SCREENSHOT")
    if target:
        path = Path(target)
        browser.set_window_size(1280, 900)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        inner = browser.execute_script("return window.innerHeight")
        browser.set_window_size(1280, 900 + height - inner)
        time.sleep(0.5)
        assert browser.save_screenshot(str(path.with_name(f"{path.stem}-task{path.suffix}").resolve()))
        browser.set_window_size(1440, 1000)

    # What an agent's workspace holds later is not what the page shows: the diff is the mirror's.
    agents = server.client.get(f"/api/tasks/{task_id}").json()["agents"]
    workspace = Path(next(a["workspace"] for a in agents if a["agent_type"] == "coding"))
    (workspace / "planted.py").write_text("planted = True\n")
    git("add", "planted.py", cwd=workspace)
    git("commit", "--quiet", "-m", "planted after the fact", cwd=workspace)
    shown = server.client.get(f"/api/tasks/{task_id}/diff").json()["files"]
    assert sorted(f["path"] for f in shown) == ["calc.py", "test_calc.py"]

    browser.find_element(By.ID, "tp-back").click()
    wait(browser, lambda d: d.find_element(By.ID, "agents-panel").is_displayed(), what="back to the lists")
    assert not browser.find_element(By.ID, "task-page").is_displayed()


def test_hostile_title_diff_and_flags_are_text(
    make_server: ServerFactory,
    tmp_path: Path,
    browser: WebDriver,  # noqa: F811
) -> None:
    remote_with_project(tmp_path, "calc")
    server = make_server(PROJECTS_DIR=str(tmp_path / "projects"), GITHUB_OWNER="acme")
    hostile = ("\n".join(HOSTILE_LINES) + "\n").encode()
    branch_with(tmp_path, server, "task/hostile", {"page.html": hostile, "app.js": hostile})
    task_id = task_on(server, "task/hostile")
    quoted = HOSTILE_TITLE.replace("'", "''")
    write_db(
        server,
        f"UPDATE tasks SET title = '{quoted}', pr_url = 'javascript:window.__pwned=4', pr_number = 3,"
        " waiting_for = 'checks', waiting_since = '2026-01-01T10:04:30.000Z'"
        f" WHERE id = '{task_id}'",
        "INSERT INTO agents (id, task_id, agent_type, status, runtime, created_at, updated_at, prompt,"
        " started_at, completed_at, timeout_seconds, max_turns, log_lines, metadata, flags, end_reason,"
        " error)"
        f" VALUES ('agent-x1', '{task_id}', 'coding', 'failed', 'local', '2026-01-01T10:00:00.000Z',"
        " '2026-01-01T10:04:00.000Z', 'p', '2026-01-01T10:00:01.000Z', '2026-01-01T10:04:00.000Z', 60, 10,"
        """ 0, '{}', '[{"name": "stalled", "detail": "x"}]', 'budget_exceeded', '""" + quoted + "')",
    )
    open_task(browser, server, task_id)
    assert browser.find_element(By.ID, "tp-title").text == HOSTILE_TITLE
    assert browser.find_elements(By.CSS_SELECTOR, "#tp-pr a") == [], "a javascript: link is no link"
    wait(
        browser,
        lambda d: d.find_element(By.ID, "tp-diff").get_attribute("data-state") == "loaded",
        what="diff",
    )
    for path in ("page.html", "app.js"):
        shown = [
            e.text
            for e in browser.find_elements(By.CSS_SELECTOR, f'#tp-diff details[data-path="{path}"] .dl.add')
        ]
        assert shown == [f"+{line}" for line in HOSTILE_LINES], (path, shown)
    flags, classes, mark = browser.execute_script(  # read at once: the open wait redraws the chart
        "const b = document.querySelector(\"#tp-timeline g.bar[data-agent-id='agent-x1']\");"
        "return [b.dataset.flags, b.getAttribute('class'), b.querySelector('.flag-mark').textContent]"
    )
    assert flags == "stalled budget_exceeded" and "flagged" in classes
    assert "stalled, budget_exceeded" in mark
    browser.find_element(By.ID, "tp-back").send_keys(Keys.TAB)  # the keyboard reaches the bars
    for _ in range(4):
        if browser.switch_to.active_element.get_attribute("data-agent-id"):
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("data-agent-id") == "agent-x1"
    assert browser.find_element(By.ID, "tp-bar-detail").text.startswith(
        "code (coding agent agent-x1) · failed"
    )
    title = "return document.querySelector('#tp-timeline g.bar[data-agent-id] title').textContent"
    assert HOSTILE_TITLE in browser.execute_script(title)
    drawn = browser.execute_script("return document.querySelector('#tp-timeline svg')")
    wait(
        browser,
        lambda d: d.execute_script("return document.querySelector('#tp-timeline svg')") != drawn,
        what="a redraw (the open checks wait grows with the clock)",
    )
    assert browser.switch_to.active_element.get_attribute("data-agent-id") == "agent-x1", "the focus stays"
    assert browser.find_element(By.ID, "tp-waiting").text.startswith("checks since")
    assert browser.find_elements(By.CSS_SELECTOR, "#task-page img, #task-page script") == []
    time.sleep(0.3)
    assert browser.execute_script("return window.__pwned") is None


def test_the_task_page_on_a_phone_and_a_task_with_no_branch(
    server: Server,
    browser: WebDriver,  # noqa: F811
) -> None:
    task_id = server.client.post("/api/tasks", json={"title": "A rather long task title " * 6}).json()["id"]
    browser.set_window_size(375, 812)
    try:
        open_task(browser, server, task_id)
        wait(browser, lambda d: d.find_element(By.ID, "tp-diff").get_attribute("data-state") == "none")
        assert "No branch" in browser.find_element(By.ID, "tp-diff").text
        scroll, inner = browser.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll <= inner, "nothing wider than the screen"
        svg = browser.find_element(By.CSS_SELECTOR, "#tp-timeline svg")
        assert svg.rect["x"] >= 0 and svg.rect["x"] + svg.rect["width"] <= inner
    finally:
        browser.set_window_size(1440, 1000)
    browser.get(f"{server.url}/#/tasks/task-nope")
    wait(browser, lambda d: d.find_element(By.ID, "task-page").get_attribute("data-state") == "missing")
    assert task_row(browser, task_id) is None or not task_row(browser, task_id).is_displayed()  # type: ignore[union-attr]


def test_the_task_page_scripts_are_served_and_loaded_by_the_page(server: Server) -> None:
    page = server.client.get("/").text
    for name in ("task.js", "diff.js"):
        asset = server.client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
        assert f'<script src="/static/{name}" defer></script>' in page
    assert "innerHTML" not in server.client.get("/static/diff.js").text


def test_a_large_diff_is_read_page_by_page(
    make_server: ServerFactory,
    tmp_path: Path,
    browser: WebDriver,  # noqa: F811
) -> None:
    remote_with_project(tmp_path, "calc")
    server = make_server(PROJECTS_DIR=str(tmp_path / "projects"), GITHUB_OWNER="acme")
    files = {f"src/m{i:03}.py": f"x = {i}\n".encode() for i in range(45)}
    branch_with(tmp_path, server, "task/many", files)
    open_task(browser, server, task_on(server, "task/many"))
    diff = browser.find_element(By.ID, "tp-diff")
    wait(browser, lambda d: diff.get_attribute("data-page") == "1", what="the first page")
    first = diff_paths(browser)
    assert browser.find_element(By.ID, "tp-diff-page").text == "Page 1 of 2"
    assert not browser.find_element(By.ID, "tp-diff-prev").is_enabled()
    browser.find_element(By.ID, "tp-diff-next").send_keys(Keys.ENTER)
    wait(browser, lambda d: diff.get_attribute("data-page") == "2", what="the second page")
    second = diff_paths(browser)
    assert sorted(first + second) == sorted(files) and not set(first) & set(second)
    assert not browser.find_element(By.ID, "tp-diff-next").is_enabled()
    browser.find_element(By.ID, "tp-diff-prev").click()
    wait(browser, lambda d: diff.get_attribute("data-page") == "1", what="back to the first page")
