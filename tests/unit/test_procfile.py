"""One process table: the package's (what an installed ``lrbridge run`` starts) and the Procfile agree."""

import pytest

from services import procfile
from services.cli.run import BUILT_IN, process_commands
from tests.stack import ROOT, procfile_commands


def test_the_procfile_is_the_table_written_out():
    assert (ROOT / "Procfile").read_text() == procfile.text(), "run: python -m services.procfile Procfile"
    assert procfile.read(ROOT / "Procfile") == procfile.commands() == procfile_commands()
    assert list(procfile.commands()) == ["hub", "notifier", "gateway"]


def test_run_uses_the_built_in_table_not_a_procfile_in_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "Procfile").write_text("web: python -m http.server\n")
    monkeypatch.chdir(tmp_path)
    assert process_commands({}) == (procfile.commands(), BUILT_IN)


def test_bridge_procfile_names_another_procfile(tmp_path):
    path = tmp_path / "Procfile.dev"
    path.write_text("# comment\n\nhub: python -m services.hub\nweb: python -m http.server 8000\n")
    commands, source = process_commands({"BRIDGE_PROCFILE": str(path)})
    assert commands == {"hub": "python -m services.hub", "web": "python -m http.server 8000"}
    assert source == str(path)
    with pytest.raises(FileNotFoundError, match="BRIDGE_PROCFILE"):
        process_commands({"BRIDGE_PROCFILE": str(tmp_path / "missing")})


def test_the_writer_writes_the_table(tmp_path):
    assert procfile.main([str(tmp_path / "Procfile")]) == 0
    assert (tmp_path / "Procfile").read_text() == procfile.text()
