"""The live dashboard in headless Chromium (Debian's, driven by Playwright): clients and job progress appear live."""

import shutil
from pathlib import Path

import pytest

from tests.stack import ROOT
from tests.system.operator_support import connect

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
if not Path(CHROMIUM).exists():
    pytest.skip("needs Debian's chromium (tools/install-system-deps.sh installs it)", allow_module_level=True)


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_dashboard_shows_clients_and_moving_job_progress(stack_factory, browser, tmp_path):
    stack = stack_factory(env={"BRIDGE_STATUS_INTERVAL": "1"}, services=("hub", "notifier", "gateway"))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda ex: errors.append(str(ex)))
    page.goto(stack.base_url + "/ws/dashboard")
    assert page.title().startswith("Lightroom bridge")
    # The page joined as a client and reads its messages live.
    sync_api.expect(page.locator("#live")).to_have_text("live: sse", timeout=15000)
    sync_api.expect(page.locator('#clients tr[data-client-type="dashboard"]')).to_have_count(1, timeout=10000)

    client_id, _ = connect(stack, "lightroom", ["jobs"])
    row = page.locator(f'#clients tr[data-client-id="{client_id}"]')
    sync_api.expect(row).to_contain_text("lightroom", timeout=10000)
    sync_api.expect(page.locator('#channels tr[data-channel="jobs"]')).to_contain_text("2", timeout=10000)

    bar = page.locator('#jobs [data-job-id="job-7"] .bar')
    for progress in (10, 60):
        r = stack.post("/ws/notify/job_progress", {"job_id": "job-7", "stage": "export", "progress": progress})
        assert r.status == 200, r
        sync_api.expect(bar).to_have_attribute("aria-valuenow", str(progress), timeout=10000)
    assert "60%" in page.locator('#jobs [data-job-id="job-7"] .fill').get_attribute("style")
    sync_api.expect(page.locator("#health")).to_have_text("ok", timeout=15000)
    sync_api.expect(page.locator("#sys-cpu")).not_to_have_text("—", timeout=15000)
    page.wait_for_function("document.querySelector('#chart-now').textContent.includes('messages/s')", timeout=10000)

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10000
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copy(shot, artifacts / "dashboard.png")
    assert errors == []


def test_dashboard_static_files_are_served_with_a_strict_policy(stack):
    r = stack.get("/ws/dashboard")
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for name, kind in (("dashboard.js", "javascript"), ("dashboard.css", "css")):
        r = stack.get(f"/ws/dashboard/static/{name}")
        assert r.status == 200 and kind in r.headers["content-type"], r
    r = stack.get("/ws/dashboard/static/../__init__.py")
    assert r.status == 404


def test_dashboard_with_an_admin_token_from_the_address(stack_factory, browser):
    stack = stack_factory(env={"BRIDGE_ADMIN_TOKEN": "tok-456-secret-0123456789"})
    connect(stack, "lightroom")
    page = browser.new_page()
    page.goto(stack.base_url + "/ws/dashboard#token=tok-456-secret-0123456789")
    sync_api.expect(page.locator('#clients tr[data-client-type="lightroom"]')).to_have_count(1, timeout=10000)
    assert "token" not in page.url  # taken out of the address bar once stored
    page = browser.new_page()
    page.goto(stack.base_url + "/ws/dashboard")  # a new tab: no token yet
    sync_api.expect(page.locator("#token-form")).to_be_visible(timeout=10000)
    page.fill("#token", "tok-456-secret-0123456789")
    page.click("#token-form button")
    sync_api.expect(page.locator('#clients tr[data-client-type="lightroom"]')).to_have_count(1, timeout=10000)
