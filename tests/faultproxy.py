"""A TCP proxy on 127.0.0.1 that misbehaves on a schedule, to put in front of the S3
server: it passes traffic, resets connections, refuses them (nothing listens) or
black-holes them (accepts and never answers)."""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import time
from collections.abc import Sequence

MODES = ("pass", "reset", "refuse", "blackhole")


class FaultProxy:
    """Forwards ``127.0.0.1:port`` to ``target`` in the modes of ``schedule`` (mode,
    seconds), cycled from ``start()`` on."""

    def __init__(self, target: tuple[str, int], schedule: Sequence[tuple[str, float]]) -> None:
        assert all(mode in MODES for mode, _ in schedule)
        self.target, self.schedule = target, list(schedule)
        self.port = _free_port()
        self.stopped = threading.Event()
        self.seen: set[str] = set()
        self.held: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        for mode, seconds in itertools.cycle(self.schedule):
            if self.stopped.is_set():
                break
            self.seen.add(mode)
            end = time.monotonic() + seconds
            if mode == "refuse":  # nothing listens on the port
                self.stopped.wait(seconds)
                continue
            with socket.create_server(("127.0.0.1", self.port), reuse_port=False) as server:
                server.settimeout(0.1)
                while time.monotonic() < end and not self.stopped.is_set():
                    try:
                        client, _ = server.accept()
                    except TimeoutError:
                        continue
                    if mode == "pass":
                        threading.Thread(target=self._forward, args=(client,), daemon=True).start()
                    elif mode == "reset":
                        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        client.close()
                    else:  # blackhole: keep it open, say nothing
                        self.held.append(client)
        for client in self.held:
            client.close()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
