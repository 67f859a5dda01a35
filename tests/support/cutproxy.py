"""A TCP proxy on loopback that cuts its first connection part way.

    with CutProxy(target_port, cut_after=200_000) as proxy:
        ... connect to proxy.port ...

The first connection is forwarded until the client has sent ``cut_after``
bytes (TLS included: the proxy sees only ciphertext), then both sides are
closed abruptly, as a network drop would. Later connections are forwarded
whole, to ``then_port`` when given (another server: what a client reaching
someone else after a network change would meet). ``connections`` counts the
connections accepted.

With ``stall`` (seconds) the first connection goes silent instead of being
cut, as one dropped by a NAT or a network change does: nothing more is read
from the client or forwarded either way, no FIN, no reset; after ``stall``
seconds both sides are closed.

Threads, all daemonic; every socket has a timeout, and ``stop()`` ends them
all.
"""

import socket
import threading
import time


class CutProxy:
    def __init__(self, target_port, cut_after, target_host="127.0.0.1", stall=None, then_port=None):
        self.target = (target_host, target_port)
        self.then = (target_host, then_port) if then_port else self.target
        self.cut_after = cut_after
        self.stall = stall
        self.connections = 0
        self.cut = False
        self._lock = threading.Lock()
        self._socks = []
        self._stopping = False
        self._listener = socket.socket()
        if stall is not None:
            # A small receive window (inherited by accepted sockets), so a
            # client that keeps writing into the silence fills it soon, as
            # it would a real path's, instead of loopback's megabytes.
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stopping = True
        self._thread.join(5)
        with self._lock:
            for s in self._socks:
                _close(s)
        self._listener.close()

    def _accept(self):
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                first = self.connections == 1
            try:
                server = socket.create_connection(self.target if first else self.then, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._socks += [client, server]
            budget = [self.cut_after if first else None]
            silent = threading.Event()
            for src, dst, counted in ((client, server, True), (server, client, False)):
                threading.Thread(
                    target=self._pump,
                    args=(src, dst, budget if counted else None, (client, server), silent),
                    daemon=True,
                ).start()

    def _pump(self, src, dst, budget, pair, silent):
        src.settimeout(0.2)
        while not self._stopping and not silent.is_set():
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            if budget is not None and budget[0] is not None:
                if len(data) >= budget[0]:
                    # Forward up to the limit, then drop both sides.
                    try:
                        dst.sendall(data[: budget[0]])
                    except OSError:
                        pass
                    self.cut = True
                    if self.stall is not None:
                        silent.set()
                        deadline = time.monotonic() + self.stall
                        while not self._stopping and time.monotonic() < deadline:
                            time.sleep(0.1)
                    for s in pair:
                        _close(s)
                    return
                budget[0] -= len(data)
            if silent.is_set():
                # Gone silent while this was read: it never arrives.
                return
            try:
                dst.sendall(data)
            except OSError:
                break
        if silent.is_set():
            return
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _close(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
