"""Settings read strictly: one message per bad setting, naming the variable, the value and what is allowed."""

import pytest

from services import settings
from services.cli import checks
from services.settings import ConfigError


@pytest.mark.parametrize("value, allowed", [
    ("127.0.0.1:5101", "no scheme"),
    ("http://127.0.0.1:5101", "unknown scheme 'http'"),
    ("tcp://127.0.0.1", "tcp://HOST:PORT"),
    ("tcp://:5101", "tcp://HOST:PORT"),
    ("tcp://127.0.0.1:99999", "from 0 to 65535"),
    ("ipc://", "needs a name"),
])
def test_a_bad_endpoint_names_the_setting_and_the_forms_allowed(value, allowed):
    with pytest.raises(ConfigError) as caught:
        settings.env_endpoint({"BRIDGE_HUB_RPC": value}, "BRIDGE_HUB_RPC", settings.DEFAULT_HUB_RPC)
    assert caught.value.key == "BRIDGE_HUB_RPC"
    assert str(caught.value).startswith(f"BRIDGE_HUB_RPC={value!r}: ") and allowed in str(caught.value)


@pytest.mark.parametrize("value", ["tcp://127.0.0.1:5101", "tcp://*:5101", "tcp://[::1]:5101", "tcp://host:*",
                                   "ipc:///tmp/hub.sock", "inproc://hub"])
def test_good_endpoints_pass(value):
    assert settings.env_endpoint({"K": value}, "K", "x") == value


def test_numbers_say_the_range_allowed():
    with pytest.raises(ConfigError, match=r"^Q='abc': must be a whole number from 1 to 1000000$"):
        settings.env_int({"Q": "abc"}, "Q", 1, minimum=1, maximum=1_000_000)
    with pytest.raises(ConfigError, match=r"^T=0.01: must be a number of at least 0.05$"):
        settings.env_float({"T": "0.01"}, "T", 1.0, minimum=0.05)
    with pytest.raises(ConfigError, match=r"^T='nan': must be a finite number$"):
        settings.env_float({"T": "nan"}, "T", 1.0)
    with pytest.raises(ConfigError, match=r"^B='maybe': must be true or false"):
        settings.env_bool({"B": "maybe"}, "B", False)


def test_every_bad_setting_is_found_not_only_the_first():
    env = {"BRIDGE_QUEUE_SIZE": "abc", "BRIDGE_MAX_CLIENTS": "0", "BRIDGE_HUB_RPC": "127.0.0.1:5101",
           "BRIDGE_POLL_MAX_WAIT": "999", "BRIDGE_WARN_CPU": "-3", "BRIDGE_LOG_FORMAT": "xml"}
    lines = checks.settings_problems(env)
    assert sorted(line.split("=")[0] for line in lines) == sorted(env)  # one each, though several services read some


def test_a_security_rule_counts_as_its_setting():
    lines = checks.settings_problems({"BRIDGE_HTTP_HOST": "0.0.0.0"})
    (line,) = lines
    assert line.startswith("BRIDGE_HTTP_HOST=0.0.0.0") and "BRIDGE_ADMIN_TOKEN" in line


def test_unreadable_curve_keys_are_reported(tmp_path):
    (line,) = checks.settings_problems({"BRIDGE_CURVE_DIR": str(tmp_path / "none")})
    assert line.startswith(f"BRIDGE_CURVE_DIR={tmp_path / 'none'}")


def test_good_settings_have_no_problems():
    assert checks.settings_problems({}) == []
    assert checks.settings_problems({"BRIDGE_QUEUE_SIZE": "abc"}, names={"gateway"}) == []  # not the gateway's


def test_a_file_where_a_folder_should_be_is_reported(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    lines = checks.settings_problems({"BRIDGE_STORE": str(blocker / "hub.sqlite3"),
                                      "BRIDGE_LOG_DIR": str(blocker / "logs")})
    assert sorted(line.split("=")[0] for line in lines) == ["BRIDGE_LOG_DIR", "BRIDGE_STORE"]
    assert all("is a file, not a folder" in line for line in lines)
    (line,) = checks.settings_problems({"BRIDGE_DATA_DIR": str(blocker), "BRIDGE_LOG_DIR": ""})
    assert line.startswith("BRIDGE_DATA_DIR=") and "is a file" in line  # the store's default folder is in it
    assert checks.settings_problems({"BRIDGE_DATA_DIR": str(tmp_path / "not" / "yet")}) == []  # made at start
