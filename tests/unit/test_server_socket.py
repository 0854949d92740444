"""The listening socket `serve` binds: replies must not wait for Nagle's algorithm."""

from __future__ import annotations

import asyncio
import socket

from adkvoice.server import ServeOptions
from adkvoice.server.runner import _bind


async def test_accepted_connections_have_tcp_nodelay() -> None:
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; without it a
    # reply's first audio frame waited ~40 ms for the client's delayed ACK.
    listener = _bind(ServeOptions(host="127.0.0.1", port=0))
    assert listener.proto == socket.IPPROTO_TCP
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_client, sock=listener)
    try:
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(5):
            assert await accepted != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
