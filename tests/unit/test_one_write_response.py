"""A response's head and body leave the gateway in one write (services/gateway/worker.py)."""

import asyncio

from services.gateway.worker import _OneWriteResponse


class Transport:
    def __init__(self):
        self.writes = []
        self.closed = False

    def write(self, data):
        self.writes.append(data)

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed


def test_head_and_body_in_one_write_then_stream_parts_straight_through():
    async def main():
        t = Transport()
        w = _OneWriteResponse(t, asyncio.get_running_loop())
        w.write(b"HEAD")
        assert t.writes == []
        w.write(b"BODY")
        w.write(b"MORE")
        assert t.writes == [b"HEADBODY", b"MORE"]
        await asyncio.sleep(0)
        assert t.writes == [b"HEADBODY", b"MORE"]  # the end-of-tick flush finds nothing left

    asyncio.run(main())


def test_a_head_alone_goes_out_at_the_end_of_the_tick():
    async def main():
        t = Transport()
        w = _OneWriteResponse(t, asyncio.get_running_loop())
        w.write(b"HEAD")
        await asyncio.sleep(0)
        assert t.writes == [b"HEAD"]
        w.write(b"event")
        assert t.writes == [b"HEAD", b"event"]

    asyncio.run(main())


def test_close_sends_a_held_head_first_and_other_calls_reach_the_transport():
    async def main():
        t = Transport()
        w = _OneWriteResponse(t, asyncio.get_running_loop())
        w.write(b"HEAD")
        w.close()
        assert t.writes == [b"HEAD"] and t.closed and w.is_closing()

    asyncio.run(main())
