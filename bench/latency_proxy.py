"""A TCP proxy on 127.0.0.1 that adds one-way latency and counts round trips.

    with LatencyProxy(target_port, delay=0.025) as proxy:
        ... connect clients to proxy.port ...
        proxy.total_turns(), proxy.connections[0].turns

Byte-level: it never parses what it forwards, so TLS (STARTTLS or implicit)
passes through untouched.

Latency. Each direction is a delay line: every chunk read from one side is
stamped with its arrival time and written to the other side ``delay``
seconds later, in order. Chunks that are due together go out in one write.
A later chunk never waits for an earlier one's delay to finish (its own
deadline is later anyway), so the delay adds latency without limiting
throughput. With ``handshake=True`` (the default) the upstream connection is
opened ``2 * delay`` after the client's connect is accepted, which is where
a real link of that one-way delay would put the server's accept (SYN,
SYN-ACK, ACK): the server's greeting then reaches the client ``3 * delay``
after it connected, as on a real network.

What it cannot model: TCP acknowledgements. Each side's data is
acknowledged by the proxy's own sockets at once (TCP_QUICKACK, re-armed
before every read), not by the far end a delay later. A server that
answers one client write in two small writes without TCP_NODELAY (Postfix
does, for a pipelined ``BDAT`` transaction over its 4 KB input buffer: see
bench/nagle_check.py) has its second write held by Nagle until the first is
acknowledged; on a real link that costs one more round trip, through this
proxy nothing. Results for such messages are a lower bound.

Round trips. The proxy sees every chunk of both directions in the order it
arrives. A turn is counted each time traffic from the server arrives after
traffic from the client, i.e. each time the client sent something and then
the server answered: the client->server->client pattern of one round trip.
Consecutive chunks in the same direction (a pipelined group, a multi-line
reply, a TLS flight, a large message in many segments) never add a turn. The
server's greeting, which nothing from the client preceded, is not a turn. A
client that waits for each reply before sending the next command pays one
turn per command; a client that pipelines a whole transaction pays one.

The proxy runs an asyncio loop in a daemon thread until :meth:`stop`; every
connection is closed then. Counters are readable from any thread.
"""

import asyncio
import collections
import socket
import threading
import time

CHUNK = 256 * 1024


class ConnectionStats:
    """What one proxied connection did. ``events`` is a list of
    ``(t, "c" | "s", nbytes)`` in arrival order at the proxy (``t`` from
    ``time.monotonic()``); "c" is client->server."""

    def __init__(self, number):
        self.number = number
        self.opened = time.monotonic()
        self.closed = None
        self._lock = threading.Lock()
        self.events = []
        self.turns = 0
        self.client_chunks = 0
        self.server_chunks = 0
        self.client_bytes = 0
        self.server_bytes = 0
        self.client_bursts = 0  # runs of consecutive client->server chunks
        self._last = None

    def record(self, direction, nbytes):
        with self._lock:
            self.events.append((time.monotonic(), direction, nbytes))
            if direction == "c":
                self.client_chunks += 1
                self.client_bytes += nbytes
                if self._last != "c":
                    self.client_bursts += 1
            else:
                self.server_chunks += 1
                self.server_bytes += nbytes
                if self._last == "c":
                    self.turns += 1
            self._last = direction

    def snapshot(self):
        with self._lock:
            return {
                "number": self.number,
                "turns": self.turns,
                "client_chunks": self.client_chunks,
                "server_chunks": self.server_chunks,
                "client_bytes": self.client_bytes,
                "server_bytes": self.server_bytes,
                "client_bursts": self.client_bursts,
                "events": list(self.events),
                "closed": self.closed is not None,
            }

    def __repr__(self):
        return "<connection %d: %d turns, %d/%d chunks, %d/%d bytes c->s/s->c>" % (
            self.number, self.turns, self.client_chunks, self.server_chunks,
            self.client_bytes, self.server_bytes,
        )


class _DelayLine:
    """Chunks stamped with a due time, written to ``writer`` in order."""

    def __init__(self, writer, delay):
        self.writer = writer
        self.delay = delay
        self.items = collections.deque()
        self.wakeup = asyncio.Event()

    def put(self, data, now):
        self.items.append((now + self.delay, data))
        self.wakeup.set()

    async def run(self, loop):
        try:
            while True:
                while not self.items:
                    self.wakeup.clear()
                    await self.wakeup.wait()
                due, _ = self.items[0]
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                now = loop.time()
                batch = []
                eof = False
                while self.items and self.items[0][0] <= now:
                    _, data = self.items.popleft()
                    if data is None:
                        eof = True
                        break
                    batch.append(data)
                if batch:
                    self.writer.write(b"".join(batch))
                    await self.writer.drain()
                if eof:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
        except (ConnectionError, OSError):
            return


class LatencyProxy:
    """Forward 127.0.0.1:``port`` to ``target_host``:``target_port`` with
    ``delay`` seconds added to each direction (one way)."""

    def __init__(self, target_port, delay=0.0, target_host="127.0.0.1", port=0, handshake=True,
                 on_connect=None):
        self.target_host = target_host
        # Called with the ConnectionStats in the proxy's thread when a client
        # connects, before anything is forwarded (bench/run.py uses it to
        # mark the start of the SMTP session in the client's memory use).
        self.on_connect = on_connect
        self.target_port = target_port
        self.delay = float(delay)
        self.handshake = handshake
        self.port = port
        self.connections = []
        self._lock = threading.Lock()
        self._loop = None
        self._thread = None
        self._server = None
        self._tasks = set()
        self._writers = set()
        self._started = threading.Event()
        self._error = None

    # -- control (any thread) ---------------------------------------------

    def start(self, timeout=5.0):
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("latency proxy did not start within %ss" % timeout)
        if self._error:
            raise self._error
        return self

    def stop(self, timeout=5.0):
        loop = self._loop
        if loop is None or not self._thread:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            fut.result(timeout)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def set_delay(self, delay):
        """Applies to connections opened from now on."""
        self.delay = float(delay)

    def reset(self):
        """Forget the connections seen so far."""
        with self._lock:
            self.connections = []

    def snapshot(self):
        with self._lock:
            return list(self.connections)

    def total_turns(self):
        return sum(c.turns for c in self.snapshot())

    def wait_closed(self, n=None, timeout=10.0):
        """Wait until every connection seen (or at least ``n``) is closed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            conns = self.snapshot()
            if (n is None or len(conns) >= n) and all(c.closed for c in conns):
                return conns
            time.sleep(0.01)
        raise TimeoutError("proxied connections still open: %r" % self.snapshot())

    # -- loop thread -------------------------------------------------------

    def _run(self):
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self.port, limit=CHUNK)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except Exception as e:  # port taken, ...
            self._error = e
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            for task in list(self._tasks):
                task.cancel()
            try:
                loop.run_until_complete(asyncio.sleep(0))
            except Exception:
                pass
            loop.close()

    async def _shutdown(self):
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle(self, c_reader, c_writer):
        self._tasks.add(asyncio.current_task())
        with self._lock:
            stats = ConnectionStats(len(self.connections))
            self.connections.append(stats)
        delay = self.delay
        self._writers.add(c_writer)
        s_writer = None
        try:
            if self.on_connect is not None:
                try:
                    self.on_connect(stats)
                except Exception:
                    pass
            _nodelay(c_writer)
            if self.handshake and delay > 0:
                await asyncio.sleep(2 * delay)
            s_reader, s_writer = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port, limit=CHUNK), 10
            )
            self._writers.add(s_writer)
            _nodelay(s_writer)
            to_server = _DelayLine(s_writer, delay)
            to_client = _DelayLine(c_writer, delay)
            loop = asyncio.get_running_loop()
            tasks = [
                self._spawn(self._pump(c_reader, to_server, stats, "c", loop, c_writer)),
                self._spawn(self._pump(s_reader, to_client, stats, "s", loop, s_writer)),
                self._spawn(to_server.run(loop)),
                self._spawn(to_client.run(loop)),
            ]
            # Done when both delay lines have delivered their EOF (or failed).
            await asyncio.gather(tasks[2], tasks[3], return_exceptions=True)
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            stats.closed = time.monotonic()
            for w in (c_writer, s_writer):
                if w is not None:
                    w.close()
                    self._writers.discard(w)
            self._tasks.discard(asyncio.current_task())

    async def _pump(self, reader, line, stats, direction, loop, writer):
        # The proxy models a link, not a host: it must not add delayed-ACK
        # stalls of its own (which would hold a server's Nagle-delayed
        # second write for 40 ms at "0 ms" added delay), so it acknowledges
        # at once, as a router on the path would not delay anything.
        sock = writer.get_extra_info("socket")
        try:
            while True:
                _quickack(sock)
                data = await reader.read(CHUNK)
                if not data:
                    break
                stats.record(direction, len(data))
                line.put(data, loop.time())
        except (ConnectionError, OSError):
            pass
        line.put(None, loop.time())


def _quickack(sock):
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or quickack is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
    except OSError:
        pass


def _nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("target_port", type=int)
    p.add_argument("--delay", type=float, default=0.025, help="one-way delay in seconds")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seconds", type=float, default=600, help="run this long, then stop")
    args = p.parse_args(argv)
    with LatencyProxy(args.target_port, args.delay, port=args.port) as proxy:
        print("127.0.0.1:%d -> %d, +%.3fs each way" % (proxy.port, args.target_port, args.delay), flush=True)
        deadline = time.monotonic() + args.seconds
        try:
            while time.monotonic() < deadline:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        for c in proxy.snapshot():
            print(c)


if __name__ == "__main__":
    main()
