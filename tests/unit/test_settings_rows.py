"""Each service's settings are declared once (a ``Setting`` row each); the docs' tables must say the same."""

import re
from pathlib import Path

import pytest

from services.gateway import config as gateway
from services.hub import config as hub
from services.notifier import config as notifier
from services.settings import ConfigError

ROOT = Path(__file__).resolve().parents[2]
ROWS = [(service.__name__, row) for service in (gateway, hub, notifier) for row in service.SETTINGS]


def _documented(path):
    """``{variable: default as shown}`` from a Markdown settings table (``| variable | default | … |`` rows).

    A row may name several variables (``A``, ``B``) with as many defaults (``1``, ``2``); a default cell
    without backticks is one text for all of them.
    """
    found = {}
    for line in path.read_text().splitlines():
        if not line.startswith("| `BRIDGE_"):
            continue
        names_cell, default_cell = [c.strip() for c in line.strip("|").split("|")[:2]]
        names = re.findall(r"`(BRIDGE_[A-Z0-9_]+)`", names_cell)
        ticked = re.findall(r"`([^`]*)`", default_cell)
        if len(names) > 1 and len(ticked) == len(names):
            defaults = ticked
        elif ticked and default_cell.startswith("`") and len(names) == 1:
            rest = default_cell[len(ticked[0]) + 2:].strip()
            defaults = [ticked[0] + (" " + rest if rest and not rest.startswith("(") else "")]
        else:
            defaults = [default_cell] * len(names)
        found.update(zip(names, defaults))
    return found


def test_every_setting_is_in_the_operator_table_with_its_default():
    documented = _documented(ROOT / "docs" / "OPERATOR.md")
    for service, row in ROWS:
        assert row.variable in documented, f"{row.variable} ({service}) is missing from docs/OPERATOR.md"
        assert documented[row.variable] == row.documented(), (service, row.variable)


def test_the_readme_table_agrees_with_the_rows():
    documented = _documented(ROOT / "README.md")
    checked = 0
    for service, row in ROWS:
        if row.variable in documented:
            assert documented[row.variable] == row.documented(), (service, row.variable)
            checked += 1
    assert checked >= 10


def test_a_variable_two_services_read_is_declared_alike():
    by_variable = {}
    for service, row in ROWS:
        by_variable.setdefault(row.variable, []).append(row)
    for variable, rows in by_variable.items():
        assert len({(r.kind, r.default, r.minimum, r.maximum, r.choices) for r in rows}) == 1, variable


@pytest.mark.parametrize("service", [gateway, hub, notifier], ids=lambda s: s.__name__)
def test_the_dataclass_and_the_reading_come_from_the_rows(service):
    cls = {"services.gateway.config": gateway.GatewayConfig, "services.hub.config": hub.HubConfig,
           "services.notifier.config": notifier.NotifierConfig}[service.__name__]
    assert [f for f in cls.__dataclass_fields__] == [row.field for row in service.SETTINGS]
    assert {n: f.default for n, f in cls.__dataclass_fields__.items()} == {r.field: r.default for r in service.SETTINGS}
    for row in service.SETTINGS:
        if row.minimum is not None:
            with pytest.raises(ConfigError) as info:
                service.load_config({row.variable: str(row.minimum - 1)})
            assert info.value.key == row.variable
