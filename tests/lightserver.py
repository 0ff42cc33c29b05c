"""A lightweight single-user server for load tests: what the hub and the proxy need, no more.

Started by the real LocalSpawner in place of JupyterLab (``c.Spawner.cmd``), it reads what
JupyterHub gives every single-user server (JUPYTERHUB_SERVICE_URL for its port and prefix,
JUPYTERHUB_API_TOKEN, JUPYTERHUB_ACTIVITY_URL) and answers every request under its prefix
(the hub's readiness check, requests through the proxy). ``GET {prefix}activity`` reports
activity to the hub, as jupyterhub-singleuser does, and answers how long the hub took.
Standard library only (asyncio), so that a thousand of them fit in memory (~10 MB each).
It does not check who is asking: the benchmark measures the hub and proxy, not auth here.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

SERVICE = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
PREFIX = SERVICE.path if SERVICE.path.endswith("/") else SERVICE.path + "/"
ACTIVITY = urlsplit(os.environ.get("JUPYTERHUB_ACTIVITY_URL", ""))
TOKEN = os.environ.get("JUPYTERHUB_API_TOKEN", "")


async def report_activity() -> tuple[int, float]:
    """POST last_activity to the hub; (status, seconds)."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = json.dumps({"last_activity": now, "servers": {"": {"last_activity": now}}}).encode()
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(ACTIVITY.hostname, ACTIVITY.port)
    writer.write(
        f"POST {ACTIVITY.path} HTTP/1.1\r\nHost: {ACTIVITY.netloc}\r\n"
        f"Authorization: token {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    return int(status_line.split()[1]), time.perf_counter() - started


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            request = await reader.readline()
            if not request:
                break
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            path = request.split()[1].decode("latin-1") if len(request.split()) > 1 else "/"
            if path.startswith(PREFIX + "activity"):
                status, seconds = await report_activity()
                body = json.dumps({"hub_status": status, "seconds": seconds}).encode()
            elif path.startswith(PREFIX) or path.rstrip("/") == PREFIX.rstrip("/"):
                body = b'{"ok": true}'
            else:
                body = b""
            code = "200 OK" if body else "404 Not Found"
            writer.write(f"HTTP/1.1 {code}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, SERVICE.hostname or "127.0.0.1", SERVICE.port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
