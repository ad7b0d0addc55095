"""Fixtures that start the real processes; see tests/stack.py."""

import os

import pytest

from tests.stack import Stack


@pytest.fixture(scope="session", autouse=True)
def private_data_folder(tmp_path_factory):
    """No test writes to the real per-user data folder: every process a test starts inherits this one."""
    os.environ["BRIDGE_DATA_DIR"] = str(tmp_path_factory.mktemp("data-folder"))
    yield


@pytest.fixture
def stack_factory(tmp_path):
    """Make stacks with custom environment; every one is stopped at teardown."""
    stacks = []

    def make(env=None, services=("hub", "gateway"), ready=True):
        stack = Stack(tmp_path / f"stack{len(stacks)}", env)
        stacks.append(stack)
        stack.start(*services)
        if ready:
            stack.wait_ready()
        return stack

    yield make
    for stack in stacks:
        stack.stop_all()


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory):
    """One hub + gateway (2 workers) for a whole test module: for tests that do not disturb it."""
    stack = Stack(tmp_path_factory.mktemp("stack"), {"BRIDGE_GATEWAY_WORKERS": "2"})
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


@pytest.fixture
def stack(stack_factory):
    """A fresh hub + gateway for one test."""
    return stack_factory()
