"""A plain TCP listener on 127.0.0.1 that records every connection and every byte: where a leaked token would land."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class Trap:
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)
    _server: asyncio.Server | None = None

    async def start(self) -> Trap:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1  # counted whether or not anything is sent: assert_untouched fails on it either way
        with contextlib.suppress(TimeoutError):
            self.received += await asyncio.wait_for(reader.read(65536), 1.0)
        writer.close()

    def assert_untouched(self) -> None:
        assert self.connections == 0, f"the trap saw {self.connections} connection(s): {bytes(self.received)[:200]!r}"
        assert b"authorization" not in self.received.lower()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
