"""A small HTTP/1.1 client on asyncio streams: keep-alive, Content-Length or chunked.

The load generators need thousands of concurrent long-polls from one
process with little CPU per request, so this skips everything a general
client does (redirects, cookies, TLS) and parses only the status line, the
headers it is asked for, and the body.
"""

import asyncio


class HTTPError(Exception):
    """The connection broke or the answer was not HTTP/1.1 as expected."""


class Connection:
    """One keep-alive connection; requests on it run one after another."""

    __slots__ = ("host", "port", "reader", "writer", "_head")

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.reader = None
        self.writer = None
        self._head = f"Host: {host}:{port}\r\n".encode()

    async def open(self, timeout=10.0):
        """Connect (with a deadline)."""
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=1 << 22), timeout
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
        for attempt in (1, 2):
            reused = self.writer is not None
            if not reused:
                await self.open()
            self.writer.write(request)
            try:
                return await asyncio.wait_for(self._response(), timeout)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError) as ex:
                self.close()
                # The server may close an idle keep-alive connection just as we
                # reuse it: a GET that got no byte back is retried once on a new one.
                nothing = isinstance(ex, asyncio.IncompleteReadError) and not ex.partial
                if attempt == 1 and reused and method == b"GET" and nothing:
                    continue
                raise HTTPError(f"{method.decode()} {path.decode()[:60]}: {type(ex).__name__}") from None
            except asyncio.TimeoutError:
                self.close()
                raise

    async def _response(self):
        block = await self.reader.readuntil(b"\r\n\r\n")
        status = int(block[9:12])
        lower = block.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = block.index(b"\r\n", at + 2)
            length = int(block[at + 17:end])
            body = await self.reader.readexactly(length) if length else b""
        elif b"\r\ntransfer-encoding: chunked" in lower:
            body = await self._chunked()
        else:
            body = b""
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, block, body

    async def _chunked(self):
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self):
        """Close the socket (idempotent)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def header(block, name):
    """The value of header ``name`` (lower-case bytes) in a raw header block, or ``None``."""
    lower = block.lower()
    at = lower.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    return block[start:block.index(b"\r\n", start)].strip()


async def open_many(host, port, count, concurrency=200):
    """``count`` open connections, opened ``concurrency`` at a time (the listen backlog is finite)."""
    conns = [Connection(host, port) for _ in range(count)]
    sem = asyncio.Semaphore(concurrency)

    async def one(conn):
        async with sem:
            await conn.open()

    await asyncio.gather(*(one(c) for c in conns))
    return conns
