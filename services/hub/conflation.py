"""What a full queue gives up first: conflation on overflow.

Some messages only matter as the latest of their kind: a newer
``job_progress`` for a job says everything an older one said, and a newer
``system_status`` replaces the last. Those carry a *conflation key*; every
other message (``job_completed``, ``job_failed``, anything without a key)
must not be dropped while a conflatable one could be.

When a message arrives for a full queue (and only then, so a client that
keeps up sees every message):

1. If it has a key, every queued message with the same key is removed (the
   new one replaces them, at the end of the queue with a new seq).
2. Otherwise, or if none had its key, the oldest queued message that has a
   key is removed.
3. If nothing queued has a key: a keyed newcomer is itself dropped (it is the
   least valuable message in sight); an unkeyed one pushes out the oldest
   message, as before conflation existed.

Each removed message leaves a gap in the client's seq numbers and is counted
in the ``dropped`` figure of its next poll, so gaps and ``dropped`` always
agree. A newcomer dropped in rule 3 still uses up its seq, for the same
reason.
"""


UNKNOWN = object()  # stands for "the key was not computed yet"


def key(message):
    """The message's conflation key, or ``None`` when it must be kept."""
    kind = message.get("type")
    if kind == "job_progress":
        return ("job_progress", str(message.get("job_id")))
    if kind == "system_status":
        return ("system_status", message.get("channel"))
    return None


def make_room(session, message, wanted=UNKNOWN):
    """Free a place in ``session``'s full queue for ``message``.

    Returns ``(accept, removed)``: whether to queue ``message`` at all, and
    the ``(seq, message)`` entries taken out of the queue (the store deletes
    them). When ``accept`` is true and nothing was removed, the queue's own
    overflow (drop the oldest) applies. Entries already handed to a reader
    (seq <= ``session.sent``) are in flight and never conflated. ``wanted``
    is ``message``'s key when the caller has it already.

    The queue's index of keyed entries (services/hub/queues.py) finds what
    to remove without visiting any other entry: O(1) amortised per call,
    whatever the queue holds.
    """
    queue = session.queue
    sent = getattr(session, "sent", 0)
    if wanted is UNKNOWN:
        wanted = key(message)
    removed = []
    if queue.has_keyed():  # else rules 1 and 2 have nothing to take
        if wanted is not None:
            removed = queue.take_key(wanted, sent)
        if not removed:
            oldest = queue.take_oldest_keyed(sent)
            if oldest is not None:
                removed.append(oldest)
    if removed:
        _count(session, len(removed))
        return True, removed
    if wanted is not None:
        session.next_seq += 1
        _count(session, 1)
        return False, removed
    return True, removed


def _count(session, n):
    session.dropped_total += n
    session.dropped_unreported += n
