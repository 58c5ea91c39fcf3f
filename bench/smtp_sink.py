"""An SMTP server that accepts and discards every message; prints its port when ready.

Run as `python bench/smtp_sink.py PORT` in its own process so that the benchmark's
client and the server do not share an interpreter.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.smtp import SMTP

from digest.mail.capture import free_port


class Discard:
    """Accept everything, keep nothing."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@contextmanager
def sink_process() -> Iterator[int]:
    """Run this server in its own process on a free loopback port; yields the port."""
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, str(port)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.readline()  # the port: it is listening
    try:
        yield port
    finally:
        process.kill()
        process.wait()


async def main(port: int) -> None:
    """Serve until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Discard()), "127.0.0.1", port)
    print(port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
