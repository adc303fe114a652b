"""What the socket fakes share: a daemon thread serving one socket, started and stopped by `with`."""

from __future__ import annotations

import socket
import threading
from typing import TypeVar

S = TypeVar("S", bound="BackgroundServer")


class BackgroundServer:
    """Subclasses bind ``self.sock`` (with a short timeout), then call ``_prepare_thread()``."""

    sock: socket.socket

    def _prepare_thread(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        raise NotImplementedError

    def _cleanup(self) -> None:
        """Anything else to release after the socket is closed."""

    def __enter__(self: S) -> S:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()
        self._cleanup()


class TcpAcceptServer(BackgroundServer):
    """Accepts connections and hands each to ``_handle`` on a thread of its own."""

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
