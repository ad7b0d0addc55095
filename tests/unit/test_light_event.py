"""The gateway's light stand-ins for uvicorn's per-connection objects behave as the ones they replace
(services/gateway/worker.py): ``_Event`` as ``asyncio.Event``, ``_Pipeline`` as the deque of pipelined requests."""

import asyncio
from collections import deque

import pytest

from services.gateway.worker import _Event, _Pipeline


@pytest.mark.parametrize("make", [asyncio.Event, _Event])
def test_event_wakes_every_waiter_and_clears(make):
    async def main():
        event = make()
        assert not event.is_set()
        woken = []

        async def waiter(i):
            await event.wait()
            woken.append(i)

        tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
        await asyncio.sleep(0)
        assert woken == []
        event.set()
        await asyncio.gather(*tasks)
        assert sorted(woken) == [0, 1, 2] and event.is_set()
        assert await event.wait() is True  # set: returns at once
        event.clear()
        assert not event.is_set()
        late = asyncio.create_task(event.wait())
        await asyncio.sleep(0)
        late.cancel()  # a cancelled waiter leaves nothing behind
        with pytest.raises(asyncio.CancelledError):
            await late
        event.set()
        assert event.is_set()

    asyncio.run(main())


def test_light_event_starts_set_when_asked():
    async def main():
        assert await asyncio.wait_for(_Event(True).wait(), 1) is True

    asyncio.run(main())


def test_pipeline_is_first_in_first_out_like_the_deque():
    ours, theirs = _Pipeline(), deque()
    assert not ours and not theirs
    for item in ("a", "b", "c"):
        ours.appendleft(item)
        theirs.appendleft(item)
    assert bool(ours) and [ours.pop() for _ in range(3)] == [theirs.pop() for _ in range(3)] == ["a", "b", "c"]
