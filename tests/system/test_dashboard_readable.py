"""The dashboard as a photographer reads it, in headless Chromium against the real hub, notifier and gateway.

A failed job's error is text whatever shape the backend gave it, finished jobs
collapse into one history row each (id, stage, duration, outcome, error), a
job that stopped reporting is marked stalled, a closed tab leaves no client
behind, sessions without a reader are counted apart, and system, jobs and
clients fit the first screen of a 1366×768 laptop. Screenshots go to
tests/artifacts/ and are checked pixel by pixel for what they must show.
"""

import base64
import re
import time
from pathlib import Path

import pytest

from services.notifier.client import Publisher
from tests.stack import ROOT, wait_for
from tests.system.operator_support import connect

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREEN = {"width": 1366, "height": 768}
STALE = 3  # BRIDGE_JOB_STALE_SECONDS for these tests
ARTIFACTS = ROOT / "tests" / "artifacts"

# Colours of the page (dashboard.css): what the screenshot must show where.
WARN = (0xd2, 0x99, 0x22)  # the stalled badge
BAD = (0xf8, 0x51, 0x49)  # a failed outcome
ERROR_TEXT = (0xff, 0x9b, 0x94)  # an error's words
PANEL = (0x1f, 0x22, 0x26)  # a section's background

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
if not Path(CHROMIUM).exists():
    pytest.skip("needs Debian's chromium (tools/install-system-deps.sh installs it)", allow_module_level=True)

# Every shape of error a backend may send, and the words the page must show for it.
FAILURES = {
    "exp-1": ("disk full", "disk full"),
    "exp-2": ({"message": "catalog is locked"}, "catalog is locked"),
    "exp-3": ({"code": "E_PERM", "message": "permission denied on /Volumes/Photos"},
              "E_PERM: permission denied on /Volumes/Photos"),
    "exp-4": ({"error": {"code": 503, "message": "analysis service unavailable"}, "retry": False},
              "503: analysis service unavailable"),
}
COMPLETED = ("imp-1", "imp-2")


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def hub_job(stack, job_id):
    r = stack.get(f"/ws/jobs/{job_id}")
    return r.json["job"] if r.status == 200 else None


def run_jobs(stack, backend):
    """Each finished job told by several events (created, progress ×2, then its end), one after the other."""
    for job_id, (error, _) in FAILURES.items():
        backend.job_created(job_id, job_type="export", name=f"Export {job_id}")
        backend.job_progress(job_id, 30, stage="render")
        backend.job_progress(job_id, 70, stage="write")
        backend.job_failed(job_id, error)
        wait_for(lambda: (hub_job(stack, job_id) or {}).get("status") == "failed", 15, message=job_id)
    for job_id in COMPLETED:
        backend.job_created(job_id, job_type="import", name=f"Import {job_id}")
        backend.job_progress(job_id, 50, stage="copy")
        backend.job_completed(job_id, result={"photos": 12})
        wait_for(lambda: (hub_job(stack, job_id) or {}).get("status") == "completed", 15, message=job_id)
    backend.job_started("stuck-1", stage="analyse")
    backend.job_progress("stuck-1", 40, stage="analyse", message="faces")
    wait_for(lambda: hub_job(stack, "stuck-1") is not None, 15, message="stuck-1")


def colour_share(browser, png, box, rgb, tolerance=40):
    """The share of pixels within ``box`` (CSS px, scale 1) of ``png`` that are near ``rgb``, decoded by Chromium."""
    page = browser.new_page()
    try:
        return page.evaluate("""async ([data, box, rgb, tol]) => {
            const img = new Image();
            img.src = "data:image/png;base64," + data;
            await img.decode();
            const c = document.createElement("canvas");
            c.width = img.width; c.height = img.height;
            const g = c.getContext("2d");
            g.drawImage(img, 0, 0);
            const x = Math.floor(box.x), y = Math.floor(box.y);
            const w = Math.max(1, Math.floor(box.width)), h = Math.max(1, Math.floor(box.height));
            const px = g.getImageData(x, y, w, h).data;
            let near = 0;
            for (let i = 0; i < px.length; i += 4) {
                if (Math.abs(px[i] - rgb[0]) + Math.abs(px[i + 1] - rgb[1]) + Math.abs(px[i + 2] - rgb[2]) <= tol) near++;
            }
            return near / (w * h);
        }""", [base64.b64encode(png).decode(), box, list(rgb), tolerance])
    finally:
        page.close()


def steady_shot(page, selectors, timeout=15.0):
    """A viewport screenshot with the boxes of ``selectors`` in it, the same just before and just after it.

    The page redraws once a second: boxes read apart from the picture could
    describe another frame. Retried until two readings agree, or fails.
    """
    deadline = time.monotonic() + timeout
    while True:
        before = {s: page.locator(s).bounding_box() for s in selectors}
        shot = page.screenshot()
        after = {s: page.locator(s).bounding_box() for s in selectors}
        if before == after and all(before.values()):
            return shot, before
        assert time.monotonic() < deadline, f"the page did not hold still: {before} {after}"


def inside_screen(box):
    return (box is not None and box["x"] >= 0 and box["y"] >= 0
            and box["x"] + box["width"] <= SCREEN["width"] and box["y"] + box["height"] <= SCREEN["height"])


def save(png, name):
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_bytes(png)


def test_failed_jobs_read_as_text_in_a_history_and_a_silent_job_is_marked_stalled(stack_factory, browser, request):
    stack = stack_factory(env={"BRIDGE_STATUS_INTERVAL": "1", "BRIDGE_JOB_STALE_SECONDS": str(STALE)},
                          services=("hub", "notifier", "gateway"))
    connect(stack, "lightroom", ["jobs"])
    page = browser.new_page(viewport=SCREEN)
    page_errors = []
    page.on("pageerror", lambda ex: page_errors.append(str(ex)))
    page.goto(stack.base_url + "/ws/dashboard")
    sync_api.expect(page.locator("#live")).to_have_text("live: sse", timeout=15000)
    backend = Publisher(stack.env["BRIDGE_EVENTS_IN"], timeout=2.0, raise_on_drop=True)
    request.addfinalizer(backend.close)
    run_jobs(stack, backend)

    # Finished jobs: one row each (however many events told it), newest first, with id, stage, duration, outcome.
    history = page.locator("#job-history tbody tr")
    finished = list(FAILURES) + list(COMPLETED)
    sync_api.expect(history).to_have_count(len(finished), timeout=10000)
    rows = history.evaluate_all("rows => rows.map(r => [r.dataset.jobId, r.dataset.outcome, r.innerText])")
    assert [r[0] for r in rows] == finished[::-1], rows
    for job_id, outcome, text in rows:
        assert job_id in text and outcome in text
        assert ("failed" if job_id in FAILURES else "completed") == outcome
    for job_id, (_, words) in FAILURES.items():
        row = page.locator(f'#job-history tr[data-job-id="{job_id}"]')
        sync_api.expect(row.locator("td.err")).to_have_text(words)
        assert "write" in row.inner_text()  # the last stage it reached
        sync_api.expect(row.locator("td.num")).to_have_text(re.compile(r"^\d+(\.\d)? s$"))  # how long it took
    assert hub_job(stack, "exp-1")["duration_seconds"] >= 0
    assert page.locator('#jobs [data-job-id="exp-1"]').count() == 0  # not among the active ones

    # The job that stopped reporting: the hub marks it (so /ws/jobs and the CLI see it too), the page shows it.
    stuck = page.locator('#jobs [data-job-id="stuck-1"]')
    sync_api.expect(stuck).to_have_attribute("data-stalled", "true", timeout=(STALE + 10) * 1000)
    assert hub_job(stack, "stuck-1")["stalled"] is True
    sync_api.expect(stuck.locator(".badge.stalled")).to_have_text("stalled")
    sync_api.expect(stuck.locator(".age")).to_contain_text("no event for")
    sync_api.expect(page.locator("#jobs-count")).to_contain_text("1 stalled")
    sync_api.expect(page.locator("#sys-cpu")).not_to_have_text("—", timeout=15000)
    body = page.inner_text("body")
    assert "[object Object]" not in body and "undefined" not in body and "NaN" not in body

    # The first screen of a 1366×768 laptop holds system, jobs and clients, whole (boxes checked below).
    assert inside_screen(page.locator('#clients tr[data-client-type="lightroom"]').bounding_box())
    assert page.locator("#error").is_hidden()  # no complaint bar over the page
    badge, outcome = "#jobs .badge.stalled", '#job-history tr[data-job-id="exp-3"] td.outcome'
    row, error = '#job-history tr[data-job-id="exp-3"]', '#job-history tr[data-job-id="exp-3"] td.err'
    panels = ("#system-panel", "#jobs-panel", "#clients-panel")
    # The viewport only: what the photographer sees without scrolling.
    shot, boxes = steady_shot(page, (badge, outcome, row, error) + panels)
    save(shot, "dashboard-1366x768.png")
    assert colour_share(browser, shot, boxes[badge], WARN) > 0.4, "the stalled badge is not visible in the screenshot"
    assert colour_share(browser, shot, boxes[outcome], BAD, tolerance=60) > 0.02, "the failed outcome is not red"
    r, e = boxes[row], boxes[error]
    assert r["y"] <= e["y"] and e["y"] + e["height"] <= r["y"] + r["height"] + 1, (r, e)  # in its row
    assert colour_share(browser, shot, e, ERROR_TEXT, tolerance=60) > 0.02, "no error text in the screenshot"
    for panel in panels:
        assert inside_screen(boxes[panel]), (panel, boxes[panel])
        assert colour_share(browser, shot, boxes[panel], PANEL, tolerance=6) > 0.5, panel

    # A new event clears the mark: stalled means silent, not slow.
    backend.job_progress("stuck-1", 60, stage="analyse")
    sync_api.expect(stuck).to_have_attribute("data-stalled", "false", timeout=10000)
    sync_api.expect(stuck.locator(".bar")).to_have_attribute("aria-valuenow", "60")
    assert page_errors == []


def test_the_history_is_bounded_newest_first(stack_factory, browser):
    stack = stack_factory(services=("hub", "gateway"))
    page = browser.new_page(viewport=SCREEN)
    page.goto(stack.base_url + "/ws/dashboard")
    sync_api.expect(page.locator("#live")).to_have_text("live: sse", timeout=15000)
    for n in range(55):
        r = stack.post("/ws/notify/job_complete", {"job_id": f"batch-{n:02d}", "success": n % 5 != 0,
                                                   "error": {"code": "E", "message": f"broken {n}"}})
        assert r.status == 200, r
    assert stack.get("/ws/jobs").json["count"] == 55
    history = page.locator("#job-history tbody tr")
    sync_api.expect(page.locator("#history-count")).to_have_text("newest 50 of 55", timeout=10000)
    sync_api.expect(history).to_have_count(50)
    ids = history.evaluate_all("rows => rows.map(r => r.dataset.jobId)")
    assert ids == [f"batch-{n:02d}" for n in range(54, 4, -1)]
    sync_api.expect(page.locator('#job-history tr[data-job-id="batch-50"] td.err')).to_have_text("E: broken 50")
    sync_api.expect(page.locator("#sys-messages")).to_contain_text("55 published")  # the next refresh
    sync_api.expect(page.locator('#clients tr[data-client-type="dashboard"]')).to_have_count(1)
    assert "[object Object]" not in page.inner_text("body")
    save(page.screenshot(), "dashboard-history.png")


def test_a_closed_tab_leaves_no_client_and_idle_sessions_are_counted_apart(stack_factory, browser):
    # A short keepalive: the gateway notices a closed connection at its next write.
    stack = stack_factory(env={"BRIDGE_SSE_KEEPALIVE": "2", "BRIDGE_QUEUE_SIZE": "5"}, services=("hub", "gateway"))
    context = browser.new_context(viewport=SCREEN)
    tabs = [context.new_page() for _ in range(2)]
    for tab in tabs:
        tab.goto(stack.base_url + "/ws/dashboard")
        sync_api.expect(tab.locator("#live")).to_have_text("live: sse", timeout=15000)
    stay, leave = (tab.evaluate("document.documentElement.dataset.clientId") for tab in tabs)

    def listed():
        return {c["id"]: c for c in stack.get("/ws/clients").json["clients"]}

    wait_for(lambda: listed().get(leave, {}).get("connected") and listed().get(stay, {}).get("connected"), 15,
             message="both tabs connected")
    # A client that subscribed and never reads: its queue fills and overflows.
    idle, _ = connect(stack, "lightroom", ["photos"])
    for n in range(8):
        r = stack.post("/ws/broadcast", {"channel": "photos", "message": {"type": "photo_imported", "photo_id": n}})
        assert r.status == 200, r
    status = wait_for(lambda: (lambda s: s["dropped_idle"] > 0 and s)(stack.get("/ws/status").json["status"]), 10,
                      message="drops of the idle client")
    assert status["clients_live"] == 2 and status["clients_idle"] == 1, status
    assert status["dropped_live"] == 0, status

    tabs[1].close()
    wait_for(lambda: leave not in listed(), 30, message="the closed tab's session removed")
    assert stay in listed() and idle in listed()
    assert "its stream ended" in stack.output("hub")

    page = tabs[0]
    sync_api.expect(page.locator("#clients-count")).to_have_text("1 live · 1 without a reader", timeout=10000)
    sync_api.expect(page.locator(f'#clients tr[data-client-id="{leave}"]')).to_have_count(0)
    sync_api.expect(page.locator(f'#clients tr[data-client-id="{idle}"]')).to_have_attribute("data-live", "false")
    sync_api.expect(page.locator(f'#clients tr[data-client-id="{stay}"]')).to_have_attribute("data-live", "true")
    sync_api.expect(page.locator("#clients tr.group")).to_contain_text("Without a reader")
    dropped = status["dropped_idle"]
    sync_api.expect(page.locator("#sys-dropped")).to_have_text(f"0 live · {dropped} without a reader")
    # Live rows come first, the idle one after the group line.
    order = page.locator("#clients tbody tr").evaluate_all("rows => rows.map(r => r.dataset.live || 'group')")
    assert order == ["true", "group", "false"], order
    save(page.screenshot(), "dashboard-clients.png")
    context.close()
