"""A TCP forwarder from the lab gateway to the stack's registry, which listens on 127.0.0.1 only.

Why a forwarder: the registry is shared with the whole stack and distribution serves one ``http.addr``; giving
it a second address would mean restarting it. The forwarder exists only while the lab is up, listens only on the
lab's own bridge address, and passes bytes unchanged (the registry still asks for its credentials).
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

from stacklib.config import LOGS
from stacklib.proc import running_pid, start_daemon, step, wait_until

from lablib.config import FORWARD_DAEMON, GATEWAY, REGISTRY_PORT


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _serve(listen: str, port: int, target: str, target_port: int) -> None:
    async def connect(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(target, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(connect, listen, port, reuse_address=True)
    async with server:
        await server.serve_forever()


def serve_forward(listen: str, target: str) -> None:
    """The daemon's body (``hack/lab.py forward-registry --listen HOST:PORT --to HOST:PORT``)."""
    (listen_host, listen_port), (target_host, target_port) = (address.rsplit(":", 1) for address in (listen, target))
    asyncio.run(_serve(listen_host, int(listen_port), target_host, int(target_port)))


def registry_reachable() -> bool:
    """The registry answers through the forwarder (401 without credentials is its answer)."""
    try:
        with urllib.request.urlopen(f"http://{GATEWAY}:{REGISTRY_PORT}/v2/", timeout=2):  # noqa: S310 - lab URL
            return True
    except urllib.error.HTTPError as refused:
        return refused.code == 401
    except (TimeoutError, urllib.error.URLError, OSError):
        return False


@step("lab: registry forwarder")
def ensure_forward(launcher: list[str]) -> str:
    if not (running_pid(FORWARD_DAEMON) and registry_reachable()):
        start_daemon(FORWARD_DAEMON, [*launcher, "forward-registry", "--listen", f"{GATEWAY}:{REGISTRY_PORT}",
                                      "--to", f"127.0.0.1:{REGISTRY_PORT}"])
        wait_until(registry_reachable, "registry forwarder", LOGS / f"{FORWARD_DAEMON}.log", timeout=20,
                   daemon=FORWARD_DAEMON)
    return f"{GATEWAY}:{REGISTRY_PORT} -> 127.0.0.1:{REGISTRY_PORT}"
