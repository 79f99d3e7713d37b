"""The application server framework: Routers, injected dependencies, the Server.

router = Router()

@router.subscribe("*.echo")
async def echo(request: EchoRequest) -> EchoResponse:
    return EchoResponse(message=f"echo {request.message}")
"""

from labkit.server.cache import Cache, KeyValueCache, MemoryCache
from labkit.server.errors import HandlerError, InvalidHandler, RemoteError
from labkit.server.injection import CurrentUser, Publish, Reply, register_dependency
from labkit.server.memory import MemoryBus
from labkit.server.router import Router
from labkit.server.runner import Server

__all__ = [
    "Cache",
    "CurrentUser",
    "HandlerError",
    "InvalidHandler",
    "KeyValueCache",
    "MemoryBus",
    "MemoryCache",
    "Publish",
    "RemoteError",
    "Reply",
    "Router",
    "Server",
    "register_dependency",
]
