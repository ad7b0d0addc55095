"""Log files hold client ids: they are private to their owner like the hub's store (0600, folder 0700)."""

import os
import stat

from tests.stack import Stack, wait_for
from tests.system.test_logs import write_logs


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_every_service_writes_its_log_0600_in_a_0700_folder_it_created(tmp_path):
    stack = Stack(tmp_path / "stack", {"BRIDGE_LOG_DIR": str(tmp_path / "new" / "logs")})
    try:
        stack.start("hub", "notifier", "gateway").wait_ready()
        client_id = stack.handshake()
        logs = tmp_path / "new" / "logs"
        wait_for(lambda: client_id in (logs / "hub.log").read_text(), message="the hub to log the client id")
        assert _mode(logs) == 0o700
        files = sorted(p.name for p in logs.iterdir())
        assert {"hub.log", "notifier.log", "gateway.log"} <= set(files), files
        for path in logs.iterdir():
            assert _mode(path) == 0o600, (path.name, oct(_mode(path)))
    finally:
        stack.stop_all()


def test_rotated_files_and_an_older_world_readable_file_become_0600(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    old = logs / "svc.log"
    old.write_text("an older line\n")
    old.chmod(0o644)
    proc = write_logs(tmp_path, {"BRIDGE_LOG_MAX_BYTES": "400", "BRIDGE_LOG_BACKUPS": "2"}, count=40)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert _mode(logs) == 0o755  # a folder the bridge did not create is left as its owner made it
    names = sorted(p.name for p in logs.iterdir())
    assert {"svc.log", "svc.log.1", "svc.log.2", "svc.log.lock"} <= set(names), names
    for path in logs.iterdir():
        assert _mode(path) == 0o600, (path.name, oct(_mode(path)))
