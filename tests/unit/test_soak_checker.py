"""The soak checker (benchmarks/soak/checker.py) by plain calls: each kind of loss and disorder is told apart."""

from benchmarks.soak.checker import ClientLog, Publication, Windows, check_client, failures

Q = 5  # queue size in these cases


def pubs(count, pub="z", channel="c", start=0.0, refused=()):
    return [Publication(pub, n, start + n, ("channel", channel), n not in refused, "HTTP 503" if n in refused else "")
            for n in range(1, count + 1)]


def client(arrivals, told=(), final=None, channels=("c",), name="a"):
    """``arrivals``: (seq, n) pairs of publisher "z" (n None: a non-payload message), one session."""
    log = ClientLog(name, "poll", channels)
    session = log.new_session("id-1")
    for seq, n in arrivals:
        log.arrival(session, seq, {"type": "soak", "pub": "z", "n": n} if n is not None else {"type": "x"}, 0.0)
    for count in told:
        log.dropped(count, 0.0)
    log.final = final
    return log


def check(log, publications, windows=None):
    return check_client(log, publications, windows or Windows([(0.0, "baseline")]), Q)


def test_everything_received_in_order_is_clean():
    r = check(client([(1, None)] + [(n + 1, n) for n in range(1, 11)]), pubs(10))
    assert r.total["received"] == 10
    assert failures([r]) == {}
    assert r.info["gaps"] == 0 and r.info["overtold"] == 0


def test_a_told_gap_past_the_queue_bound_is_a_justified_counted_loss():
    # seq 3 (payload 2) evicted; seqs up to 3 + Q - 1 = 7 were queued, so the queue was full
    arrivals = [(1, None), (2, 1)] + [(n + 1, n) for n in range(3, 10)]
    r = check(client(arrivals, told=[1]), pubs(9))
    assert r.total["counted"] == 1 and r.total["unjustified"] == 0
    assert r.total["silent"] == 0
    assert failures([r]) == {}


def test_a_gap_with_no_full_queue_behind_it_is_unjustified():
    arrivals = [(1, None), (2, 1), (4, 3)]  # seq 3 lost while only one later message was queued
    r = check(client(arrivals, told=[1]), pubs(3))
    assert r.total["counted"] == 1 and r.total["unjustified"] == 1
    assert failures([r]) == {"unjustified": 1}


def test_missing_without_gap_or_count_is_silent():
    arrivals = [(1, None), (2, 1), (3, 3)]  # payload 2 never got a seq
    r = check(client(arrivals), pubs(3))
    assert r.total["silent"] == 1 and r.total["counted"] == 0
    assert failures([r]) == {"silent": 1}


def test_a_count_beyond_the_gaps_covers_a_missing_payload():
    arrivals = [(1, None), (2, 1), (3, 3)]
    r = check(client(arrivals, told=[1]), pubs(3))
    assert r.total["counted"] == 1 and r.total["told_no_gap"] == 1 and r.total["silent"] == 0


def test_a_count_with_nothing_missing_is_overtold_not_lost():
    r = check(client([(1, None), (2, 1), (3, 2)], told=[4]), pubs(2))
    assert r.info["overtold"] == 4
    assert failures([r]) == {}


def test_seqs_the_hub_still_held_at_the_end_are_undelivered():
    r = check(client([(1, None), (2, 1)], final={"next_seq": 5, "queue_depth": 2}), pubs(3))
    assert r.total["undelivered"] == 2 and r.total["silent"] == 0
    assert failures([r]) == {"undelivered": 2}


def test_seqs_given_past_the_last_received_beyond_the_queue_were_evicted_and_counted():
    # 8 payloads queued after seq 2 was received; the hub holds the newest 5 (its bound), 3 went
    r = check(client([(1, None), (2, 1)], final={"next_seq": 11, "queue_depth": 5}), pubs(9))
    assert r.total["undelivered"] == 5 and r.total["counted"] == 3 and r.total["silent"] == 0
    assert r.windows[0]["counted"] == 3


def test_the_same_seq_twice_is_a_redelivery_but_one_payload_under_two_seqs_a_duplicate():
    r = check(client([(1, None), (2, 1), (2, 1), (3, 2), (4, 2)]), pubs(2))
    assert r.info["redelivered"] == 1
    assert r.total["duplicated"] == 1
    assert failures([r]) == {"duplicated": 1}


def test_payloads_or_seqs_out_of_order_are_reordered():
    r = check(client([(1, None), (2, 2), (3, 1)]), pubs(2))
    assert r.total["reordered"] == 1
    r = check(client([(1, None), (3, 2), (2, 1)]), pubs(2))
    assert r.total["reordered"] == 1


def test_refused_publications_are_not_expected():
    r = check(client([(1, None), (2, 1), (3, 3)]), pubs(3, refused={2}))
    assert failures([r]) == {}
    assert r.total["received"] == 2


def test_a_refused_publish_carried_out_late_is_noted_not_reordered():
    r = check(client([(1, None), (2, 1), (3, 3), (4, 2)]), pubs(3, refused={2}))
    assert failures([r]) == {}
    assert r.info["refused_but_received"] == 1


def test_other_channels_and_other_clients_are_not_expected():
    publications = pubs(2) + [Publication("d", 1, 1.0, ("client", "b"), True),
                              Publication("y", 1, 1.0, ("channel", "other"), True)]
    r = check(client([(1, None), (2, 1), (3, 2)]), publications)
    assert failures([r]) == {}


def test_a_loss_belongs_to_the_fault_begun_within_a_second_after_it_was_published():
    windows = Windows([(0.0, "baseline"), (3.5, "kill_hub"), (10.0, "stop_hub")])
    # payload n is published at t = n: payload 3 (t 3.0) belongs to kill_hub (begun 0.5 s later)
    r = check(client([(1, None), (2, 1), (3, 2), (4, 4)]), pubs(4), windows)
    assert r.windows[1]["silent"] == 1
    assert r.windows[0]["received"] == 2 and r.windows[1]["received"] == 1


def test_a_client_that_receives_nothing_while_messages_are_due_is_stalled():
    # payloads published at t = 1..30; the client got the first two (at t 1.1, 2.1), then nothing until 40
    log = client([])
    for n in (1, 2):
        log.arrival(0, n, {"type": "soak", "pub": "z", "n": n}, n + 0.1)
    r = check_client(log, pubs(30), Windows([(0.0, "baseline")]), Q, end=40.0, max_stall=15)
    assert r.info["stall"] == 37.0
    assert failures([r])["stalled"] == 1
    r = check_client(log, pubs(30), Windows([(0.0, "baseline")]), Q, end=40.0, max_stall=60)
    assert "stalled" not in failures([r])


def test_no_stall_while_nothing_is_due():
    log = client([])
    log.arrival(0, 1, {"type": "soak", "pub": "z", "n": 1}, 1.1)
    r = check_client(log, pubs(1), Windows([(0.0, "baseline")]), Q, end=100.0, max_stall=15)
    assert r.info["stall"] == 0 and failures([r]) == {}


def test_a_seq_gap_no_drop_report_told_fails_the_run():
    # payload 2 took seq 3 and never came, and no dropped figure said so: matched to the gap, yet untold
    arrivals = [(1, None), (2, 1)] + [(n + 1, n) for n in range(3, 10)]
    r = check(client(arrivals), pubs(9))
    assert r.info["gaps"] == 1 and r.info["untold_gaps"] == 1
    assert failures([r]) == {"untold": 1}
