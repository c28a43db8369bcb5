"""The dashboard in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import ServerFactory
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
from tests.support.server import Server, write_db

pytestmark = pytest.mark.xdist_group("browser")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
T = TypeVar("T")


def _check_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    message = (
        f"{', '.join(missing)} not found: the dashboard tests need Debian's chromium and chromium-driver "
        "(scripts/test installs them: apt-get install chromium chromium-driver)"
    )
    if os.environ.get("ORCHESTRATOR_SKIP_BROWSER") == "1":
        pytest.skip(f"{message}; skipped because ORCHESTRATOR_SKIP_BROWSER=1")
    pytest.fail(f"{message}; or set ORCHESTRATOR_SKIP_BROWSER=1 to skip them knowingly")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    _check_browser()
    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1440,1000",
        # every name is this machine: a page of "evil.example" is served by the service under test
        "--host-resolver-rules=MAP * 127.0.0.1",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # The driver is given: selenium-manager never runs, nothing is downloaded.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: WebDriver, condition: Callable[[WebDriver], T], timeout: float = 30, what: str = "") -> T:
    waiter: WebDriverWait[WebDriver] = WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )
    return waiter.until(condition, what)


def row(driver: WebDriver, agent_id: str) -> WebElement | None:
    found = driver.find_elements(By.CSS_SELECTOR, f'#agents tr[data-agent-id="{agent_id}"]')
    return found[0] if found else None


def row_status(driver: WebDriver, agent_id: str) -> str | None:
    element = row(driver, agent_id)
    return element.get_attribute("data-status") if element is not None else None


def click(driver: WebDriver, css: str) -> None:
    def clicked(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    wait(driver, clicked, what=f"click {css}")


def log_texts(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#log .line span")]


def wait_api(check: Callable[[], T], timeout: float = 30, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.1)


def slow_steps(fake_model: fm.FakeAnthropic, steps: int, delay: float = 1.0) -> str:
    return fake_model.scenario(
        [
            *[
                fm.tool("Bash", {"command": f"echo step-{i}"}, text=f"Step {i}: checking.", delay=delay)
                for i in range(steps)
            ],
            fm.text("All steps done.", delay=delay),
        ]
    )


def test_lists_agents_and_follows_a_log_live(
    server: Server, fake_model: fm.FakeAnthropic, browser: WebDriver
) -> None:
    quick = server.wait_agent(server.spawn(f"hi {fake_model.scenario([fm.text('hello there')])}")["id"])
    slow = server.spawn(f"steps {slow_steps(fake_model, 6)}")
    browser.get(server.url)
    wait(browser, lambda d: row_status(d, quick["id"]) == "completed", what="the finished agent is listed")
    wait(browser, lambda d: row_status(d, slow["id"]) == "running", what="the running agent is listed")
    cells = [c.text for c in row(browser, quick["id"]).find_elements(By.TAG_NAME, "td")]  # type: ignore[union-attr]
    assert cells[1] == "coding" and cells[2] == "completed"
    assert cells[4] == f"${quick['cost_usd']:.4f}"

    click(browser, f'#agents tr[data-agent-id="{slow["id"]}"] td')
    first = wait(
        browser, lambda d: [t for t in log_texts(d) if t.startswith("▶ Bash: echo step-")], what="a tool line"
    )
    assert server.agent(slow["id"])["status"] == "running", "the first line came before the end: it is live"
    wait(
        browser,
        lambda d: len([t for t in log_texts(d) if t.startswith("▶ Bash")]) > len(first),
        what="more lines",
    )
    assert server.agent(slow["id"])["status"] == "running", "a later line arrived live too"
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#log .line.end"), timeout=60, what="the end")
    texts = log_texts(browser)
    assert any(t.startswith("⚙ session started") for t in texts)
    assert "Step 0: checking." in texts
    assert any(t.startswith("◀ result: step-0") for t in texts)
    final = browser.find_element(By.CSS_SELECTOR, "#log .line.final span").text
    assert final.startswith("■ success") and "All steps done." in final and "$" in final
    assert browser.find_element(By.ID, "log-status").get_attribute("data-status") == "completed"
    shown = [
        int(e.get_attribute("data-id") or 0)
        for e in browser.find_elements(By.CSS_SELECTOR, "#log .line[data-id]")
    ]
    stored = [line["id"] for line in server.logs(slow["id"])]
    assert sorted(set(i for i in shown if i)) == stored, "every stored line shown once, in order"


def test_pause_resume_and_max_concurrent_from_the_page(server: Server, browser: WebDriver) -> None:
    browser.get(server.url)
    wait(browser, lambda d: d.find_element(By.ID, "queue-state").text == "running", what="queue shown")
    click(browser, "#queue-pause")
    wait_api(lambda: server.client.get("/api/queue/settings").json()["paused"], what="paused by the button")
    wait(browser, lambda d: d.find_element(By.ID, "queue-state").get_attribute("data-paused") == "true")
    assert browser.find_element(By.ID, "queue-pause").get_attribute("disabled") is not None

    field = browser.find_element(By.ID, "max-concurrent")
    # typed over, as a person would: WebDriver's clear() blurs the field unedited, and the page's re-read
    # after the pause (the change stream) may then put the old value back before the "3" is typed
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("3")
    assert field.get_attribute("value") == "3"
    click(browser, "#max-concurrent-save")
    wait_api(lambda: server.client.get("/api/queue/settings").json()["max_concurrent"] == 3, what="max set")

    click(browser, "#queue-resume")
    wait_api(lambda: not server.client.get("/api/queue/settings").json()["paused"], what="resumed")
    wait(browser, lambda d: d.find_element(By.ID, "queue-state").get_attribute("data-paused") == "false")


def test_kill_then_retry_from_the_page(
    server: Server, fake_model: fm.FakeAnthropic, browser: WebDriver
) -> None:
    agent = server.spawn(f"long {slow_steps(fake_model, 100)}")
    browser.get(server.url)
    kill = f'#agents tr[data-agent-id="{agent["id"]}"] button[data-action="kill"]'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, kill), what="a kill button")
    click(browser, kill)
    assert server.agent(agent["id"])["status"] == "running", "the first click only arms the button"
    click(browser, kill)
    assert server.wait_agent(agent["id"], timeout=30)["status"] == "killed"
    wait(browser, lambda d: row_status(d, agent["id"]) == "killed", what="row shows killed")

    click(browser, f'#agents tr[data-agent-id="{agent["id"]}"] button[data-action="retry"]')
    retried = wait_api(
        lambda: [a for a in server.client.get("/api/agents").json()["items"] if a["retry_of"] == agent["id"]],
        what="a retry",
    )[0]
    wait(browser, lambda d: row(d, retried["id"]) is not None, what="the retry is listed")
    wait(browser, lambda d: d.find_element(By.ID, "log").get_attribute("data-agent-id") == retried["id"])
    server.client.post(f"/api/agents/{retried['id']}/kill")


def test_works_with_no_set_up_on_the_token_the_service_generated(
    server: Server, fake_model: fm.FakeAnthropic, browser: WebDriver
) -> None:
    agent = server.wait_agent(server.spawn(f"hi {fake_model.scenario([fm.text('hello there')])}")["id"])
    assert httpx.get(f"{server.url}/api/agents").status_code == 401, "the API needs the token"
    browser.get(server.url)
    wait(browser, lambda d: row_status(d, agent["id"]) == "completed", what="agents listed with no set-up")
    assert browser.find_element(By.ID, "token-dialog").get_attribute("open") is None, "no question asked"
    assert not browser.find_element(By.ID, "token-forget").is_displayed()
    instance = server.client.get("/api/health").json()["instance_id"]
    wait(browser, lambda d: instance in d.find_element(By.ID, "health").text, what="health details")
    click(browser, "#queue-pause")  # a POST from the page's own origin passes the origin check
    wait_api(lambda: server.client.get("/api/queue/settings").json()["paused"], what="paused by the page")
    assert browser.execute_script("return sessionStorage.length") == 0, "the generated token is not stored"

    browser.refresh()
    wait(browser, lambda d: row_status(d, agent["id"]) == "completed", what="listed after a reload")
    assert browser.find_element(By.ID, "token-dialog").get_attribute("open") is None


def test_a_rebinding_page_gets_nothing(server: Server, browser: WebDriver) -> None:
    """A page of evil.example whose name resolves to 127.0.0.1 (DNS rebinding): same-origin to the
    browser, refused by the service on the Host header."""
    assert server.token
    browser.get(f"http://evil.example:{server.port}/")
    assert "does not answer to Host" in browser.find_element(By.TAG_NAME, "body").text
    answers = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const paths = ["/api/dashboard/token", "/api/agents", "/openapi.json", "/"];
        Promise.all(paths.map((p) => fetch(p).then(async (r) => [r.status, await r.text()])))
          .then(done, (e) => done(String(e)));
        """
    )
    assert [status for status, _ in answers] == [421, 421, 421, 421], answers
    assert all(server.token not in text for _, text in answers)
    posted = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch("/api/queue/clear", { method: "POST" }).then((r) => done(r.status), (e) => done(String(e)));
        """
    )
    assert posted == 421


def test_asks_for_the_token_once_then_works(
    make_server: ServerFactory, fake_model: fm.FakeAnthropic, browser: WebDriver
) -> None:
    server = make_server(ORCHESTRATOR_API_TOKEN="dash-secret-token-1234")
    assert httpx.get(f"{server.url}/api/agents").status_code == 401
    assert httpx.get(f"{server.url}/").status_code == 200, "the page holds no data: served without the token"
    agent = server.spawn(f"steps {slow_steps(fake_model, 3, delay=0.5)}")

    browser.get(server.url)
    dialog = wait(browser, lambda d: d.find_element(By.ID, "token-dialog"), what="the dialog")
    wait(browser, lambda d: dialog.get_attribute("open") is not None, what="the token dialog opens")
    browser.find_element(By.ID, "token-input").send_keys("wrong")
    browser.find_element(By.ID, "token-save").click()
    wait(browser, lambda d: d.find_element(By.ID, "token-error").is_displayed(), what="wrong token refused")
    field = browser.find_element(By.ID, "token-input")
    field.clear()
    field.send_keys("dash-secret-token-1234")
    browser.find_element(By.ID, "token-save").click()
    wait(browser, lambda d: dialog.get_attribute("open") is None, what="the dialog closes")
    wait(browser, lambda d: row(d, agent["id"]) is not None, what="agents listed with the token")
    click(browser, f'#agents tr[data-agent-id="{agent["id"]}"] td')
    wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#log .line.final"),
        timeout=60,
        what="log over SSE",
    )

    browser.refresh()  # the token is kept for the tab: no second question
    wait(browser, lambda d: row(d, agent["id"]) is not None, what="listed after a reload")
    assert browser.find_element(By.ID, "token-dialog").get_attribute("open") is None


def test_several_agents_running_screenshot(
    server: Server, fake_model: fm.FakeAnthropic, browser: WebDriver
) -> None:
    """Several agents at work, a queue and tasks; saved to $ORCHESTRATOR_SCREENSHOT when it is set, and
    the new-task form beside it (`<name>-new-task.png`)."""
    server.client.post("/api/queue/settings", json={"key": "max_concurrent", "value": 2})
    done = server.spawn(
        f"review {fake_model.scenario([fm.text('Looks good to me.')])}", agent_type="reviewer"
    )
    server.wait_agent(done["id"])
    running = [
        server.spawn(f"work {slow_steps(fake_model, 40, delay=0.7)}", agent_type=kind)
        for kind in ("coding", "verifier")
    ]
    marker = slow_steps(fake_model, 40, delay=0.7)
    titles = ["Add retry to the GitHub client", "Fix flaky log writer test", "Document the queue settings"]
    task_ids = []
    for title in titles:
        created = server.client.post("/api/tasks", json={"title": title, "description": f"do it {marker}"})
        task_ids.append(created.json()["id"])
    for task_id in task_ids:
        assert server.client.post(f"/api/queue/add/{task_id}").status_code == 201

    browser.get(server.url)
    for agent in running:
        wait(browser, lambda d, a=agent: row_status(d, a["id"]) == "running", what="running agents listed")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, '#agents tr[data-status="running"]')) >= 3)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#queue tbody tr")) == 3, what="queue")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tasks tbody tr")) == 3, what="tasks")
    click(browser, f'#agents tr[data-agent-id="{running[0]["id"]}"] td')
    wait(browser, lambda d: len(log_texts(d)) >= 12, timeout=60, what="a log with some lines")
    assert int(browser.find_element(By.ID, "stat-running").text) >= 3
    target = os.environ.get("ORCHESTRATOR_SCREENSHOT")
    if target:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        inner = browser.execute_script("return window.innerHeight")
        browser.set_window_size(1440, browser.get_window_size()["height"] + height - inner)
        time.sleep(0.5)
        assert browser.save_screenshot(str(path.resolve()))
        browser.set_window_size(1280, 900)
        open_new_task(browser)
        fill(browser, "nt-title", "Accept tabs in the parser")
        fill(
            browser, "nt-description", "The config parser rejects tab indentation; accept it and add a test."
        )
        fill(browser, "nt-repo", "calc")
        fill(browser, "nt-budget-usd", "2")
        time.sleep(0.3)
        assert browser.save_screenshot(str(path.with_name(f"{path.stem}-new-task{path.suffix}").resolve()))
        browser.find_element(By.ID, "nt-title").send_keys(Keys.ESCAPE)
        browser.set_window_size(1440, 1000)
    for agent in server.client.get("/api/agents", params={"status": "running"}).json()["items"]:
        server.client.post(f"/api/agents/{agent['id']}/kill")


def test_page_and_assets_are_served_without_the_token(make_server: ServerFactory) -> None:
    server = make_server(ORCHESTRATOR_API_TOKEN="assets-token-0000")
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        asset = httpx.get(f"{server.url}/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert f"/static/{name}" in page.text
    for bad in ("/static/nope.js", "/static/..%2Fapp.py", "/static/%2e%2e/metrics.py"):
        assert httpx.get(f"{server.url}{bad}").status_code == 404


# ---------- starting work from the page: the new-task form, cancel, approve / reject ----------

HOSTILE = '<img src=x onerror="window.__pwned=1">'


def task_row(driver: WebDriver, task_id: str) -> WebElement | None:
    found = driver.find_elements(By.CSS_SELECTOR, f'#tasks tr[data-task-id="{task_id}"]')
    return found[0] if found else None


def task_status(driver: WebDriver, task_id: str) -> str | None:
    element = task_row(driver, task_id)
    return element.get_attribute("data-status") if element is not None else None


def open_new_task(driver: WebDriver) -> WebElement:
    click(driver, "#new-task")
    dialog = driver.find_element(By.ID, "task-dialog")
    wait(driver, lambda d: dialog.get_attribute("open") is not None, what="the new-task dialog opens")
    wait(driver, lambda d: d.switch_to.active_element.get_attribute("id") == "nt-title", what="title focused")
    return dialog


def fill(driver: WebDriver, field_id: str, text: str) -> None:
    field = driver.find_element(By.ID, field_id)
    field.clear()
    field.send_keys(text)


def field_error(driver: WebDriver, field: str) -> str:
    box = driver.find_element(By.ID, f"nt-{field}-error")
    return box.text if box.is_displayed() else ""


def all_task_ids(server: Server) -> list[str]:
    return [t["id"] for t in server.client.get("/api/tasks", params={"limit": 500}).json()["items"]]


def test_creates_and_queues_a_task_from_the_page_then_cancels_it(server: Server, browser: WebDriver) -> None:
    server.client.post("/api/queue/settings", json={"key": "paused", "value": True})  # it stays queued
    first = server.client.post("/api/tasks", json={"title": "Earlier work"}).json()
    browser.get(server.url)
    wait(browser, lambda d: task_row(d, first["id"]) is not None, what="the existing task is listed")

    open_new_task(browser)
    fill(browser, "nt-description", "Make the parser accept tabs.")
    fill(browser, "nt-priority", "7")
    Select(browser.find_element(By.ID, "nt-deps")).select_by_value(first["id"])
    fill(browser, "nt-budget-usd", "2.5")
    fill(browser, "nt-budget-turns", "30")
    fill(browser, "nt-budget-wall", "600")
    assert browser.find_element(By.ID, "nt-queue").is_selected(), "queued unless unticked"
    title = browser.find_element(By.ID, "nt-title")
    title.send_keys("Accept tabs in the parser")
    title.send_keys(Keys.ENTER)  # Enter submits
    dialog = browser.find_element(By.ID, "task-dialog")
    wait(browser, lambda d: dialog.get_attribute("open") is None, what="the dialog closes on success")

    created = wait_api(
        lambda: [t for t in server.client.get("/api/tasks").json()["items"] if t["id"] != first["id"]],
        what="the task exists",
    )[0]
    assert created["title"] == "Accept tabs in the parser"
    assert created["description"] == "Make the parser accept tabs."
    assert created["priority"] == 7 and created["depends_on"] == [first["id"]]
    assert created["budget"] == {"usd": 2.5, "turns": 30, "wall_seconds": 600}
    assert created["status"] == "queued"
    assert [i["task_id"] for i in server.client.get("/api/queue").json()["items"]] == [created["id"]]
    wait(browser, lambda d: task_status(d, created["id"]) == "queued", what="listed as queued")

    cancel = f'#tasks tr[data-task-id="{created["id"]}"] button[data-action="cancel"]'
    click(browser, cancel)
    assert server.client.get(f"/api/tasks/{created['id']}").json()["status"] == "queued", "armed only"
    click(browser, cancel)
    wait_api(
        lambda: server.client.get(f"/api/tasks/{created['id']}").json()["status"] == "pending",
        what="cancelled: out of the queue, back to pending",
    )
    assert server.client.get("/api/queue").json()["items"] == []
    wait(browser, lambda d: task_status(d, created["id"]) == "pending", what="the row shows pending")


def test_a_refused_field_is_shown_beside_it_and_nothing_is_created(
    server: Server, browser: WebDriver
) -> None:
    browser.get(server.url)
    wait(browser, lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live")
    before = all_task_ids(server)
    open_new_task(browser)
    fill(browser, "nt-title", "Too urgent")
    fill(browser, "nt-priority", "5000")
    fill(browser, "nt-deps-ids", "task-nope")
    click(browser, "#nt-submit")
    wait(browser, lambda d: field_error(d, "priority"), what="the priority's error beside it")
    assert "1000" in field_error(browser, "priority")
    assert field_error(browser, "title") == "" and field_error(browser, "repo") == ""
    priority = browser.find_element(By.ID, "nt-priority")
    assert priority.get_attribute("aria-invalid") == "true"
    assert browser.switch_to.active_element == priority, "focus goes to the refused field"
    assert browser.find_element(By.ID, "task-dialog").get_attribute("open") is not None, "the form stays"
    assert all_task_ids(server) == before

    fill(browser, "nt-priority", "1")  # the next refusal: an unknown dependency, named by the service
    click(browser, "#nt-submit")
    wait(browser, lambda d: "task-nope" in field_error(d, "depends_on"), what="the dependency's error")
    assert field_error(browser, "priority") == ""
    assert all_task_ids(server) == before

    browser.find_element(By.ID, "nt-title").send_keys(Keys.ESCAPE)  # Escape closes
    wait(browser, lambda d: d.find_element(By.ID, "task-dialog").get_attribute("open") is None)
    assert all_task_ids(server) == before


def test_a_hostile_title_is_shown_as_text(server: Server, browser: WebDriver) -> None:
    server.client.post("/api/queue/settings", json={"key": "paused", "value": True})
    task = server.client.post("/api/tasks", json={"title": HOSTILE, "description": HOSTILE}).json()
    assert server.client.post(f"/api/queue/add/{task['id']}").status_code == 201
    browser.get(server.url)
    wait(browser, lambda d: task_row(d, task["id"]) is not None, what="the task is listed")
    cells = task_row(browser, task["id"]).find_elements(By.TAG_NAME, "td")  # type: ignore[union-attr]
    assert cells[1].text == HOSTILE
    wait(browser, lambda d: HOSTILE in d.find_element(By.ID, "queue").text, what="the queue shows it")
    open_new_task(browser)  # the dependency picker lists it too
    options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#nt-deps option")]
    assert any(HOSTILE in o for o in options), options
    assert browser.find_elements(By.CSS_SELECTOR, "#tasks img, #queue img, #task-dialog img") == []
    assert browser.execute_script("return window.__pwned") is None


def test_a_pull_request_link_is_only_ever_a_web_address(server: Server, browser: WebDriver) -> None:
    script = server.client.post("/api/tasks", json={"title": "scripted link"}).json()["id"]
    web = server.client.post("/api/tasks", json={"title": "web link"}).json()["id"]
    write_db(
        server,
        f"UPDATE tasks SET pr_url = 'javascript:window.__pwned=1', pr_number = 7 WHERE id = '{script}'",
        f"UPDATE tasks SET pr_url = 'https://github.com/acme/calc/pull/8', pr_number = 8 WHERE id = '{web}'",
    )
    browser.get(server.url)
    wait(browser, lambda d: task_row(d, web) is not None and task_row(d, script) is not None)
    links = task_row(browser, web).find_elements(By.CSS_SELECTOR, "a:not(.task-link)")  # type: ignore[union-attr]
    assert [a.get_attribute("href") for a in links] == ["https://github.com/acme/calc/pull/8"]
    pr_links = task_row(browser, script).find_elements(By.CSS_SELECTOR, "a:not(.task-link)")  # type: ignore[union-attr]
    assert pr_links == []


def test_readable_on_a_phone_width_viewport(server: Server, browser: WebDriver) -> None:
    server.client.post("/api/tasks", json={"title": "A task with a rather long title " * 4})
    browser.set_window_size(390, 844)
    try:
        browser.get(server.url)
        wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tasks tbody tr")) == 1)
        width = "return [document.documentElement.scrollWidth, window.innerWidth]"
        scroll, inner = browser.execute_script(width)
        assert scroll <= inner, "nothing wider than the screen"
        dialog = open_new_task(browser)
        assert dialog.rect["x"] >= 0 and dialog.rect["x"] + dialog.rect["width"] <= inner
        assert browser.find_element(By.ID, "nt-submit").is_displayed()
    finally:
        browser.set_window_size(1440, 1000)


def test_approves_and_rejects_tasks_waiting_at_a_gate_from_the_page(
    make_server: ServerFactory,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    browser: WebDriver,
) -> None:
    roles = {
        STARTER: [[PLAN], [PLAN]],
        CODING: [
            [commit("calc.py", "def add(a, b): return a + b", "Write calc"), outcome({"summary": "calc"})],
            [commit("other.py", "y = 2", "Write other"), outcome({"summary": "other"})],
        ],
        REVIEWER: [[APPROVE], [APPROVE]],
        DEPLOYER: [[outcome({"deployed": True, "details": "a library"})]],
        VERIFIER: [[outcome({"passed": True, "evidence": ["it imports"]})]],
    }
    marker = fake_model.roles(roles)
    server = make_server(**workflow_env, REQUIRE_APPROVAL="merge")
    browser.get(server.url)
    wait(browser, lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live")

    before = all_task_ids(server)  # an unknown repository refused at queueing: the task is removed again
    open_new_task(browser)
    fill(browser, "nt-title", "Somewhere else")
    fill(browser, "nt-repo", "no-such-repo")
    click(browser, "#nt-submit")
    wait(browser, lambda d: "no-such-repo" in field_error(d, "repo"), timeout=60, what="the repo's error")
    assert all_task_ids(server) == before, "nothing half-done"
    browser.find_element(By.ID, "nt-title").send_keys(Keys.ESCAPE)

    first = _queue_task(server, f"Write calc.add. {marker}")
    wait(browser, lambda d: task_status(d, first) == "awaiting_approval", timeout=120, what="at the gate")
    click(browser, f'#tasks tr[data-task-id="{first}"] button[data-action="approve"]')
    wait_api(
        lambda: server.client.get(f"/api/tasks/{first}").json()["waiting_for"] != "approval:merge",
        what="approved from the page",
    )
    events = [e["type"] for e in server.client.get(f"/api/tasks/{first}").json()["events"]]
    assert "task.approved" in events
    assert _wait_task(server, first)["status"] == "completed"

    second = _queue_task(server, f"Write other. {marker}", title="Other")
    wait(browser, lambda d: task_status(d, second) == "awaiting_approval", timeout=120, what="at the gate")
    click(browser, f'#tasks tr[data-task-id="{second}"] button[data-action="reject"]')
    dialog = browser.find_element(By.ID, "reject-dialog")
    wait(browser, lambda d: dialog.get_attribute("open") is not None, what="the reason is asked")
    reason = browser.find_element(By.ID, "reject-reason")
    reason.send_keys(Keys.ENTER)  # an empty reason: refused, said beside it
    wait(browser, lambda d: d.find_element(By.ID, "reject-error").is_displayed(), what="reason required")
    assert server.client.get(f"/api/tasks/{second}").json()["status"] == "awaiting_approval"
    reason.send_keys("not this week", Keys.ENTER)
    wait(browser, lambda d: dialog.get_attribute("open") is None, what="the dialog closes")
    ended = _wait_task(server, second)
    assert ended["status"] == "failed" and ended["error"] == "rejected at the merge gate: not this week"
    wait(browser, lambda d: task_status(d, second) == "failed", what="the row shows failed")
