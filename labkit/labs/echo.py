"""Echo and identified echo: the first request/reply labs.

- `<user>.echo`            -> "echo <message>"
- `<user>.echo.identified` -> "echo <message> from <user>" (the user from the subject)
"""

from __future__ import annotations

from nats.aio.client import Client

from labkit.client import request
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server.injection import CurrentUser
from labkit.server.router import Router
from labkit.subjects import ECHO, ECHO_IDENTIFIED, any_user, user_subject

router = Router("echo")


@router.subscribe(any_user(ECHO))
async def echo(request: EchoRequest) -> EchoResponse:
    return EchoResponse(message=f"echo {request.message}")


@router.subscribe(any_user(ECHO_IDENTIFIED))
async def identified_echo(request: EchoRequest, user: CurrentUser) -> EchoResponse:
    # The server's permissions let only `user` publish under `user.`: the name is proven.
    return EchoResponse(message=f"echo {request.message} from {user}")


async def send_echo(nc: Client, user: str, text: str, timeout: float = 2.0) -> str:
    """Ask the server to echo `text`; returns its answer."""
    answer = await request(
        nc, user_subject(user, ECHO), EchoRequest(message=text), EchoResponse, timeout
    )
    return answer.message


async def send_identified_echo(nc: Client, user: str, text: str, timeout: float = 2.0) -> str:
    """Ask for the identified echo: the answer names who sent it."""
    answer = await request(
        nc, user_subject(user, ECHO_IDENTIFIED), EchoRequest(message=text), EchoResponse, timeout
    )
    return answer.message
