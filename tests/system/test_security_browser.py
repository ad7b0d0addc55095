"""A hostile page in headless Chromium (Debian's, driven by Playwright) tries to change the bridge's state."""

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest

from tests.stack import free_port, wait_for
from tests.system.security_support import counters

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
if not Path(CHROMIUM).exists():
    pytest.skip("needs Debian's chromium (tools/install-system-deps.sh installs it)", allow_module_level=True)

PAGE = """<!doctype html><html><body>
<form id="f" method="POST" enctype="text/plain" target="sink" action="GATEWAY/ws/broadcast">
<input name='{"message": {"type": "evil"}, "x": "' value='"}'></form>
<form id="g" method="POST" target="sink2" action="GATEWAY/ws/cleanup">
<input name="timeout_minutes" value="0"></form>
<iframe name="sink"></iframe><iframe name="sink2"></iframe>
<script>
const GW = "GATEWAY";
window.results = {};
async function attempt(name, fn) {
  try { const r = await fn(); window.results[name] = r.type === "opaque" ? "opaque" : "status " + r.status; }
  catch (e) { window.results[name] = "blocked " + e.name; }
}
async function run() {
  const json = {"Content-Type": "application/json"};
  await attempt("json_handshake", () => fetch(GW + "/ws/handshake",
      {method: "POST", headers: json, body: JSON.stringify({client_type: "evil"})}));
  await attempt("json_broadcast", () => fetch(GW + "/ws/broadcast",
      {method: "POST", headers: json, body: JSON.stringify({message: {type: "evil"}})}));
  await attempt("text_handshake", () => fetch(GW + "/ws/handshake",
      {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: '{"client_type": "evil"}'}));
  await attempt("bare_broadcast", () => fetch(GW + "/ws/broadcast",
      {method: "POST", mode: "no-cors", body: '{"message": {"type": "evil"}}'}));
  await attempt("cleanup", () => fetch(GW + "/ws/cleanup",
      {method: "POST", mode: "no-cors", body: '{"timeout_minutes": 0}'}));
  await attempt("poll", () => fetch(GW + "/ws/poll?client_id=VICTIM", {mode: "no-cors"}));
  await attempt("read_status", () => fetch(GW + "/ws/status"));
  const loaded = (name) => new Promise((ok) => document.querySelector(`iframe[name=${name}]`).onload = ok);
  const a = loaded("sink"); document.getElementById("f").submit(); await a;
  const b = loaded("sink2"); document.getElementById("g").submit(); await b;
  window.done = true;
}
run();
</script></body></html>"""


@pytest.fixture
def hostile_site(tmp_path):
    """A plain web server on another loopback port: another origin."""
    root = tmp_path / "site"
    root.mkdir()
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def test_a_page_from_another_origin_changes_nothing(stack_factory, hostile_site):
    stack = stack_factory()
    victim = stack.handshake("lightroom", ["jobs"])
    stack.post("/ws/broadcast", {"message": {"type": "kept"}, "channel": "jobs"})
    before = counters(stack)
    root, origin = hostile_site
    (root / "index.html").write_text(PAGE.replace("GATEWAY", stack.base_url).replace("VICTIM", victim))

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(origin + "/index.html")
            page.wait_for_function("window.done === true", timeout=20000)
            results = page.evaluate("window.results")
        finally:
            browser.close()

    # CORS fetches fail in the browser (no Access-Control-Allow-Origin); no-cors ones are opaque.
    assert results["json_handshake"].startswith("blocked"), results
    assert results["json_broadcast"].startswith("blocked"), results
    assert results["read_status"].startswith("blocked"), results
    assert counters(stack) == before
    assert [m["type"] for m in stack.poll(victim).json["messages"]] == ["kept"]
    # The requests did reach the gateway, and each was refused before any handler ran.
    log = wait_for(lambda: (lambda text: text.count(" 403 ") >= 8 and text)(stack.output("gateway")),
                   message="the refusals in the gateway's log")
    for line in ("OPTIONS /ws/handshake 403", "POST /ws/broadcast 403", "POST /ws/cleanup 403",
                 "POST /ws/handshake 403", "GET /ws/poll 403"):
        assert line in log, line
    assert json.dumps(results)
