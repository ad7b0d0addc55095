"""The notifier's parts by plain calls: outbox, thresholds, ingest checks, sampler sources, config."""

import json

import pytest

from services import messages, protocol, wire
from services.notifier.config import NotifierConfig, load_config
from services.notifier.outbox import Outbox
from services.notifier.sampler import FileSource, MachineSource, NvidiaSmi, Sampler
from services.notifier.server import accept, publish_frames
from services.notifier.thresholds import Watch, watches_from_config
from services.protocol import ProtocolError
from services.settings import ConfigError


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


# ------------------------------------------------------------------ outbox
def test_outbox_keeps_order_and_drops_the_oldest_when_full():
    box = Outbox(limit=3, max_age=60, clock=Clock())
    for i in range(5):
        box.put([b"%d" % i])
    sent = []
    assert box.drain_runs(lambda run: sent.append([frames[0] for frames in run]) or True) == 3
    assert sent == [[b"2", b"3", b"4"]] and box.overflowed == 2 and len(box) == 0


def test_outbox_runs_are_cut_at_the_batch_size_and_a_refused_run_stays_at_the_front(monkeypatch):
    monkeypatch.setattr(wire, "BATCH_BYTES", 10)  # the batching half of services/protocol.py
    box = Outbox(limit=10, max_age=60, clock=Clock())
    for i in range(5):
        box.put([b"abcd%d" % i])  # 5 bytes each: two per run
    room = iter([True, False])
    sent = []
    assert box.drain_runs(lambda run: next(room) and not sent.append(run)) == 2
    assert sent == [[[b"abcd0"], [b"abcd1"]]]
    assert [frames for _, frames in box.items] == [[b"abcd2"], [b"abcd3"], [b"abcd4"]]


def test_outbox_expires_old_events():
    clock = Clock()
    box = Outbox(limit=10, max_age=5, clock=clock)
    box.put([b"old"])
    clock.now += 4
    box.put([b"new"])
    clock.now += 2
    assert box.expire() == 1 and box.expired == 1
    assert [frames for _, frames in box.items] == [[b"new"]]


# -------------------------------------------------------------- thresholds
def test_watch_warns_once_per_crossing_with_hysteresis():
    watch = Watch("cpu", "cpu_usage", threshold=80, hysteresis=10)
    levels = []
    for value in (50, 85, 99, 79, 71, 85, 70, 65, 81):
        message = watch.check({"cpu_usage": value})
        levels.append(message and (message["level"], message["value"]))
    assert levels == [None, ("warning", 85), None, None, None, None, ("ok", 70), None, ("warning", 81)]


def test_watch_message_is_a_valid_resource_warning():
    message = Watch("memory", "memory_usage", 90, 5).check({"memory_usage": 93.5})
    assert message["type"] == "resource_warning" and message["resource"] == "memory"
    assert message["threshold"] == 90 and "93.5%" in message["message"]
    assert accept(protocol.encode_ingest(protocol.publish_event("channel", message, "system")))["message"] == message


@pytest.mark.parametrize("status", [{}, {"cpu_usage": None}, {"cpu_usage": "high"}, {"cpu_usage": True}])
def test_watch_ignores_absent_or_odd_values(status):
    assert Watch("cpu", "cpu_usage", 1, 0).check(status) is None


def test_a_zero_threshold_turns_a_warning_off():
    watches = watches_from_config(NotifierConfig(warn_cpu=0, warn_gpu_temp=0))
    assert [w.resource for w in watches] == ["memory", "disk"]


# ------------------------------------------------------------------ ingest
def ingest(target, message, to=None):
    return protocol.encode_ingest(protocol.publish_event(target, message, to))


def test_accept_passes_application_and_custom_messages():
    event = accept(ingest("channel", {"type": "job_progress", "job_id": "j", "progress": 5, "extra": 1}, "jobs"))
    assert event == {"target": "channel", "to": "jobs",
                     "message": {"type": "job_progress", "job_id": "j", "progress": 5, "extra": 1}}
    assert accept(ingest("all", {"type": "anything_else", "x": [1]}))["message"] == {"type": "anything_else", "x": [1]}


@pytest.mark.parametrize("frames, error", [
    ([b"LRB/0", b"\x80"], ProtocolError),
    ([protocol.TAG], ProtocolError),
    ([protocol.TAG, b"\xc1"], ProtocolError),
    (protocol.encode_ingest({"target": "nowhere", "message": {"type": "x"}}), ProtocolError),
    (protocol.encode_ingest({"target": "channel", "message": {"type": "x"}}), ProtocolError),
    (protocol.encode_ingest({"target": "all", "message": {"type": "1bad"}}), ProtocolError),
    (protocol.encode_ingest({"target": "all", "message": {"type": "job_progress", "job_id": "j", "progress": 150}}),
     messages.MessageError),
    (protocol.encode_ingest({"target": "all", "message": {"type": "job_progress", "progress": 5}}),
     messages.MessageError),
    (protocol.encode_ingest({"target": "all", "message": {"type": "job_failed", "job_id": "j"}}), messages.MessageError),
])
def test_accept_rejects_bad_ingest(frames, error):
    with pytest.raises(error):
        accept(frames)


def test_publish_frames_forward_an_unchanged_payload_as_is_and_re_encode_a_changed_one():
    frames = ingest("channel", {"type": "job_progress", "job_id": "j", "progress": 5}, "jobs")
    assert publish_frames(frames) == [protocol.TOPIC_PUBLISH, protocol.TAG, frames[1]]
    # checking changes these: an unknown top-level key and "to": None go, a None field is left out
    for event in ({"target": "all", "message": {"type": "x"}, "extra": 1},
                  {"target": "all", "message": {"type": "x"}, "to": None},
                  {"target": "all", "message": {"type": "job_progress", "job_id": "j", "progress": 5, "stage": None}}):
        out = publish_frames(protocol.encode_ingest(event))
        assert out[2] != protocol.encode_ingest(event)[1]
        assert protocol.decode_event(out) == (protocol.TOPIC_PUBLISH, accept(protocol.encode_ingest(event)))


def test_publish_frames_rejects_what_accept_rejects():
    with pytest.raises(messages.MessageError):
        publish_frames(ingest("all", {"type": "job_progress", "job_id": "j", "progress": 150}))


def _nested(levels, leaf):
    value = leaf
    for _ in range(levels):
        value = [value]
    return {"type": "x", "v": value}


@pytest.mark.parametrize("leaf, deepest", [(1, messages.MAX_DEPTH - 2), ([], messages.MAX_DEPTH - 2),
                                           ({"a": 1}, messages.MAX_DEPTH - 3), ([1], messages.MAX_DEPTH - 3)])
def test_check_depth_counts_every_level_scalars_and_empty_containers_included(leaf, deepest):
    messages.check_depth(_nested(deepest, leaf))
    with pytest.raises(messages.MessageError):
        messages.check_depth(_nested(deepest + 1, leaf))


# ---------------------------------------------------------------- sources
def test_nvidia_smi_absent_means_no_gpu_fields():
    assert NvidiaSmi(which=lambda name: None).sample() == []
    source = MachineSource("/", gpu=NvidiaSmi(which=lambda name: None))
    status = source.sample()
    assert {"cpu_usage", "memory_usage", "disk_usage"} <= set(status)
    assert not {"gpus", "gpu_usage", "gpu_temp"} & set(status)


def test_nvidia_smi_lines_leave_unreadable_fields_out():
    assert NvidiaSmi._parse("0, NVIDIA RTX 4090, 37, 61, 1024, 24564") == {
        "index": 0, "name": "NVIDIA RTX 4090", "usage": 37.0, "temperature": 61.0,
        "memory_used_mib": 1024.0, "memory_total_mib": 24564.0}
    assert NvidiaSmi._parse("1, Tesla, [N/A], 55, [Not Supported], 16000") == {
        "index": 1, "name": "Tesla", "temperature": 55.0, "memory_total_mib": 16000.0}


def test_nvidia_smi_that_fails_gives_nothing(tmp_path):
    broken = tmp_path / "nvidia-smi"
    broken.write_text("#!/bin/sh\nexit 9\n")
    broken.chmod(0o755)
    assert NvidiaSmi(which=lambda name: str(broken)).sample() == []


def test_file_source_reads_values_and_skips_bad_files(tmp_path):
    path = tmp_path / "values.json"
    source = FileSource(str(path))
    assert source.sample() is None
    path.write_text("[1, 2]")
    assert source.sample() is None
    path.write_text(json.dumps({"cpu_usage": 97}))
    assert source.sample() == {"cpu_usage": 97}


def test_sampler_sends_status_then_warnings(tmp_path):
    path = tmp_path / "values.json"
    path.write_text(json.dumps({"cpu_usage": 97, "disk_usage": 10}))
    config = NotifierConfig(status_source=str(path), warn_cpu=90)
    sampler = Sampler(config, context=None, endpoint="inproc://unused")
    first = sampler.messages()
    assert [m["type"] for m in first] == ["system_status", "resource_warning"]
    assert first[0]["status"] == {"cpu_usage": 97, "disk_usage": 10}
    assert [m["type"] for m in sampler.messages()] == ["system_status"]


# ----------------------------------------------------------------- config
def test_config_defaults_and_overrides():
    assert load_config({}) == NotifierConfig()
    config = load_config({"BRIDGE_STATUS_INTERVAL": "0.5", "BRIDGE_WARN_DISK": "80", "BRIDGE_EVENTS_IN": "tcp://127.0.0.1:1"})
    assert (config.status_interval, config.warn_disk, config.events_in) == (0.5, 80.0, "tcp://127.0.0.1:1")


@pytest.mark.parametrize("key, value", [
    ("BRIDGE_STATUS_INTERVAL", "-1"), ("BRIDGE_WARN_MEMORY", "lots"), ("BRIDGE_EVENTS_HOLD", "0"),
    ("BRIDGE_EVENTS_IN", "tcp://0.0.0.0:5102"), ("BRIDGE_EVENTS_OUT", "tcp://192.168.1.2:5103"),
])
def test_config_errors_name_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        load_config({key: value})
