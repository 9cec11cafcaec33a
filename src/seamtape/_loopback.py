"""A threading HTTP server on 127.0.0.1 that can close its keep-alive connections on stop.

The simulator and the localhost proxy both serve through it.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

__all__ = ["HOST", "LoopbackServer"]

HOST = "127.0.0.1"


class LoopbackServer(ThreadingHTTPServer):
    """Tracks its connections so that ``stop()`` can close keep-alive ones."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self._conn_lock = threading.Lock()
        self._conns: dict[threading.Thread, socket.socket] = {}
        super().__init__((HOST, port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn, a DNS lookup we neither need nor want.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True
        )
        with self._conn_lock:
            self._conns[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._conns.pop(threading.current_thread(), None)

    def close_connections(self) -> None:
        """Wake every handler blocked on a keep-alive socket, then join the handlers."""
        with self._conn_lock:
            conns = dict(self._conns)
        for sock in conns.values():
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        for thread in conns:
            thread.join(timeout=5)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-response is routine (cut streams, SDK timeouts).
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)
