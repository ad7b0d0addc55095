"""The catalogue of endings (services/endings.py) against the docs and the plug-in's copy of it."""

import json
import re
import subprocess
import sys
from pathlib import Path

from services import endings, protocol

ROOT = Path(__file__).resolve().parents[2]


def _table(path, heading):
    """The rows of the first Markdown table after ``heading``, as lists of cell texts (backticks dropped)."""
    text = path.read_text().split(heading, 1)[1]
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if set(cells[0]) <= {"-", " "}:
            continue
        rows.append(cells)
    return rows[1:]  # without the header


def _cell(value):
    return "—" if value is None else str(value)


def test_the_protocol_pages_endings_table_is_the_catalogue():
    rows = _table(ROOT / "docs" / "PROTOCOL.md", "### Endings")
    expected = [[e.code, _cell(e.http_status), _cell(e.ws_close), _cell(e.sse_event), _cell(e.poll_flag), e.action]
                for e in endings.CATALOGUE]
    assert rows == expected


def test_the_error_code_table_lists_the_codes_the_hub_answers_with():
    rows = _table(ROOT / "docs" / "PROTOCOL.md", "## Error codes")
    assert [(code, int(status)) for code, status, _ in rows] == [
        (e.code, e.http_status) for e in endings.CATALOGUE if e.wire]
    assert protocol.ERRORS == endings.WIRE_ERRORS


def test_the_transports_close_code_table_has_every_close_code_of_the_catalogue():
    rows = _table(ROOT / "docs" / "TRANSPORTS.md", "The server closes with:")
    documented = {int(code): reason for code, reason, _ in rows}
    assert set(documented) == {e.ws_close for e in endings.CATALOGUE if e.ws_close is not None}


def test_every_row_is_whole_and_one_of_a_kind():
    assert len(endings.ENDINGS) == len(endings.CATALOGUE)
    for e in endings.CATALOGUE:
        assert e.action in endings.ACTIONS
        assert e.http_status is not None or e.ws_close is not None, e
    closes = [e.ws_close for e in endings.CATALOGUE if e.ws_close is not None]
    assert len(closes) == len(set(closes))
    for status, code in endings.CODE_BY_STATUS.items():
        assert endings.ENDINGS[code].http_status == status


def test_the_plugins_copy_of_the_catalogue_is_current():
    """tests/lua/spec/support/endings.json is what ``python -m services.endings`` prints (rewrite it so)."""
    printed = subprocess.run([sys.executable, "-m", "services.endings"], capture_output=True, text=True,
                             cwd=ROOT, check=True, timeout=60).stdout
    path = ROOT / "tests" / "lua" / "spec" / "support" / "endings.json"
    assert json.loads(path.read_text()) == json.loads(printed) == endings.export()
