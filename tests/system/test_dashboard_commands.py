"""The dashboard's Commands section in headless Chromium: pending and ended commands with state, caller and client."""

from pathlib import Path

import pytest

from services.notifier.calls import Caller, Expired

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
if not Path(CHROMIUM).exists():
    pytest.skip("needs Debian's chromium (tools/install-system-deps.sh installs it)", allow_module_level=True)


def test_dashboard_lists_pending_and_ended_commands(stack):
    client_id = stack.handshake()  # a session nothing polls: its commands wait, then expire
    caller = Caller(stack.env["BRIDGE_HUB_RPC"], caller="import-service")
    try:
        with pytest.raises(Expired) as ex:
            caller.call(client_id, "export_photos", {}, timeout=0.5)
        expired_id = ex.value.command_id
        pending_id = caller.call(client_id, "list_selected", {}, timeout=120, wait=False)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(stack.base_url + "/ws/dashboard")
                pending = page.locator(f'#commands tr[data-command-id="{pending_id}"]')
                sync_api.expect(pending).to_have_attribute("data-state", "queued", timeout=15000)
                sync_api.expect(pending).to_contain_text("list_selected")
                sync_api.expect(pending).to_contain_text("import-service")
                sync_api.expect(pending).to_contain_text(client_id[:8])
                ended = page.locator(f'#commands tr[data-command-id="{expired_id}"]')
                sync_api.expect(ended).to_have_attribute("data-state", "expired", timeout=15000)
                sync_api.expect(page.locator("#commands-count")).to_have_text("1 pending")
                assert errors == []
            finally:
                browser.close()
    finally:
        caller.close()
