"""A small HTTP/1.1 client on an asyncio protocol: keep-alive, Content-Length or chunked.

The load generators need thousands of concurrent long-polls from one
process with little CPU per request: on this 2-core machine every
microsecond the client spends is taken from the services it measures. So
this skips everything a general client does (redirects, cookies, TLS),
parses answers straight from the protocol's buffer (no stream reader, one
future per request) and times a request out with one timer instead of a
``wait_for`` task.
"""

import asyncio


class HTTPError(Exception):
    """The connection broke or the answer was not HTTP/1.1 as expected."""


class _Closed(Exception):
    """The server closed the connection; ``nothing`` when no byte of the answer had come."""

    def __init__(self, nothing):
        super().__init__("connection closed")
        self.nothing = nothing


def _parse(buf):
    """``(status, head, body, used, close)`` for the first whole answer in ``buf``, or ``None``."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    block = bytes(buf[:end + 4])
    lower = block.lower()
    start = end + 4
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = block.index(b"\r\n", at + 2)
        length = int(block[at + 17:stop])
        if len(buf) < start + length:
            return None
        body = bytes(buf[start:start + length])
        used = start + length
    elif b"\r\ntransfer-encoding: chunked" in lower:
        parts, pos = [], start
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            if size == 0:
                if len(buf) < line_end + 4:
                    return None
                used = line_end + 4
                break
            if len(buf) < line_end + 2 + size + 2:
                return None
            parts.append(bytes(buf[line_end + 2:line_end + 2 + size]))
            pos = line_end + 2 + size + 2
        body = b"".join(parts)
    else:
        body, used = b"", start
    return int(block[9:12]), block, body, used, b"\r\nconnection: close" in lower


class _Protocol(asyncio.Protocol):
    __slots__ = ("transport", "buf", "waiter", "closed")

    def __init__(self):
        self.transport = None
        self.buf = bytearray()
        self.waiter = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            answer = _parse(self.buf)
        except ValueError:
            waiter.set_exception(HTTPError("not an HTTP/1.1 answer"))
            return
        if answer is not None:
            del self.buf[:answer[3]]
            self.waiter = None
            waiter.set_result(answer)

    def connection_lost(self, exc):
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(_Closed(nothing=not self.buf))


def _expire(future):
    if not future.done():
        future.set_exception(asyncio.TimeoutError())


class Connection:
    """One keep-alive connection; requests on it run one after another."""

    __slots__ = ("host", "port", "proto", "_head")

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.proto = None
        self._head = f"Host: {host}:{port}\r\n".encode()

    async def open(self, timeout=10.0):
        """Connect (with a deadline)."""
        loop = asyncio.get_running_loop()
        _, self.proto = await asyncio.wait_for(
            loop.create_connection(_Protocol, self.host, self.port), timeout
        )
        return self

    async def request(self, method, path, body=b"", headers=b"", timeout=60.0):
        """Send one request and return ``(status, headers_bytes, body)``.

        ``headers`` is extra raw header lines (each ending in CRLF); the
        returned headers are the raw header block, for callers that need one.
        """
        head = b"%s %s HTTP/1.1\r\n" % (method, path) + self._head + headers
        if body or method == b"POST":
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        request = head + b"\r\n" + body
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            reused = self.proto is not None
            if not reused or self.proto.closed:
                self.close()
                reused = False
                await self.open()
            proto = self.proto
            future = proto.waiter = loop.create_future()
            timer = loop.call_later(timeout, _expire, future)
            proto.transport.write(request)
            if proto.buf:  # bytes that came while no request waited (an early close notice)
                proto.data_received(b"")
            try:
                status, block, answer, _, close = await future
            except _Closed as ex:
                self.close()
                # The server may close an idle keep-alive connection just as we
                # reuse it: a GET that got no byte back is retried once on a new one.
                if attempt == 1 and reused and method == b"GET" and ex.nothing:
                    continue
                raise HTTPError(f"{method.decode()} {path.decode()[:60]}: connection closed") from None
            except HTTPError:
                self.close()
                raise
            except asyncio.TimeoutError:
                self.close()
                raise
            finally:
                timer.cancel()
            if close:
                self.close()
            return status, block, answer

    def close(self):
        """Close the socket (idempotent)."""
        if self.proto is not None:
            self.proto.transport.close()
            self.proto = None


def header(block, name):
    """The value of header ``name`` (lower-case bytes) in a raw header block, or ``None``."""
    lower = block.lower()
    at = lower.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    return block[start:block.index(b"\r\n", start)].strip()


async def gather_bounded(calls, concurrency):
    """Await every ``call()`` (coroutine functions), at most ``concurrency`` at a time."""
    sem = asyncio.Semaphore(concurrency)

    async def one(call):
        async with sem:
            await call()

    await asyncio.gather(*(one(c) for c in calls))


async def open_many(host, port, count, concurrency=200):
    """``count`` open connections, opened ``concurrency`` at a time (the listen backlog is finite)."""
    conns = [Connection(host, port) for _ in range(count)]
    await gather_bounded([c.open for c in conns], concurrency)
    return conns
