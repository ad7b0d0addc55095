"""Session loss reports in acknowledged mode: told again only when the reply that told them was lost."""

from services.hub.sessions import MAX_REPORTS, Session


def full_session(limit=3, queued=5):
    session = Session("c", "t", limit, 0.0, "now")
    for n in range(queued):
        session.enqueue({"type": "item", "n": n})
    return session


def test_a_report_confirmed_by_an_ack_at_its_last_seq_is_never_told_again():
    session = full_session()  # seqs 1-5, 1 and 2 lost
    messages, _ = session.take(10, True, 0)
    assert session.take_dropped(messages[0]["seq"]) == 2
    session.ack(5)
    session.reads_from(5)
    assert session.take_dropped(5) == 0


def test_a_client_back_below_the_reply_is_told_again_exactly_once():
    session = full_session()
    messages, _ = session.take(10, True, 0)
    assert session.take_dropped(messages[0]["seq"]) == 2
    session.reads_from(0)  # polled again with its old ack: the reply never arrived
    assert session.take_dropped(5) == 2
    session.reads_from(5)
    assert session.take_dropped(5) == 0
    assert session.dropped_total == 2


def test_reports_of_several_pushes_are_told_again_only_above_the_resume_point():
    session = full_session(limit=3, queued=5)
    assert session.take_dropped(4) == 2
    session.enqueue({"type": "item", "n": 5})  # seq 6; seq 3 goes
    assert session.take_dropped(6) == 1
    session.reads_from(4)  # the push up to 4 arrived, the one up to 6 did not
    assert session.take_dropped(6) == 1


def test_the_bound_takes_the_oldest_report_as_received():
    session = Session("c", "t", 1, 0.0, "now")
    for n in range(MAX_REPORTS + 5):
        session.enqueue({"n": n})
        session.enqueue({"n": n})
        session.take_dropped(session.next_seq - 1)
    assert len(session.reports) == MAX_REPORTS
    session.reads_from(0)
    assert session.take_dropped() == 2 * MAX_REPORTS  # two lost per report; the first five dropped out


def test_a_loss_with_nothing_to_carry_it_is_told_with_the_next_message_and_again_if_that_reply_is_lost(tmp_path):
    """A reply with no message cannot be confirmed by an ack: a loss it told and the link lost was never told."""
    from services import protocol
    from services.hub.requests import PollRequest
    from tests.unit.test_store import Rig

    rig = Rig(tmp_path / "hub.sqlite3")
    hub = rig.hub
    s = rig.client(["jobs"])
    acked = s.next_seq - 1
    assert hub.count_lost(protocol.TARGET_CHANNEL, "jobs", 3) == 1  # never reached the hub: told in dropped
    first = hub.poll(s, PollRequest(b"gw", 1, 0, acked))
    assert first["messages"] == [] and first["dropped"] == 0  # kept for a message to carry
    hub.publish(protocol.TARGET_CHANNEL, {"type": "job_progress", "job_id": "a", "n": 1}, "jobs")
    second = hub.poll(s, PollRequest(b"gw", 2, 0, acked))
    assert [m["n"] for m in second["messages"]] == [1] and second["dropped"] == 3
    assert second["messages"][0]["seq"] == acked + 4  # the gap is where the lost three would have been
    lost_in_flight = hub.poll(s, PollRequest(b"gw", 3, 0, acked))  # same ack: that reply never arrived
    assert lost_in_flight["dropped"] == 3
    done = hub.poll(s, PollRequest(b"gw", 4, 0, second["messages"][0]["seq"]))
    assert done["dropped"] == 0 and s.dropped_total == 3
    rig.store.db.close()


def test_a_report_not_confirmed_when_the_hub_is_killed_is_told_again_after_the_restart(tmp_path):
    """The reports outlive a hub restart: a reply lost with the hub must not take its count with it."""
    from services import protocol
    from services.hub.requests import PollRequest
    from tests.unit.test_store import Rig

    rig = Rig(tmp_path / "hub.sqlite3", queue_size=3)
    s = rig.client(["jobs"])
    acked = s.next_seq - 1
    for n in range(5):  # two of the five overflow the queue of 3
        rig.hub.publish(protocol.TARGET_CHANNEL, {"type": "job_progress", "job_id": f"j{n}", "n": n}, "jobs")
    told = rig.hub.poll(s, PollRequest(b"gw", 1, 0, acked))
    assert told["dropped"] == 2 and [m["n"] for m in told["messages"]] == [2, 3, 4]
    rig.commit()
    hub = rig.restart()  # the reply never reached the client; the hub went down too
    again = hub.poll(hub.sessions[s.client_id], PollRequest(b"gw", 2, 0, acked))
    assert again["dropped"] == 2 and [m["n"] for m in again["messages"]] == [2, 3, 4]
    rig.commit()
    last = again["messages"][-1]["seq"]
    hub.poll(hub.sessions[s.client_id], PollRequest(b"gw", 3, 0, last))  # confirmed
    rig.commit()
    hub = rig.restart()
    after = hub.poll(hub.sessions[s.client_id], PollRequest(b"gw", 4, 0, acked))  # an old ack: nothing owed
    assert after["dropped"] == 0 and hub.sessions[s.client_id].dropped_total == 2
    rig.store.db.close()
