"""Small agents for the CLI tests: `seamtape record|replay TAPE --agent agents_for_cli:NAME`.

They read the server's URL from SEAMTAPE_TEST_URL and what to ask from SEAMTAPE_TEST_QUESTION.
"""

from __future__ import annotations

import os
from typing import Any


def _ask() -> tuple[str, dict[str, Any]]:
    url = os.environ["SEAMTAPE_TEST_URL"]
    question = os.environ.get("SEAMTAPE_TEST_QUESTION", "what is 2 + 2?")
    return f"{url}/json", {"messages": [{"role": "user", "content": question}]}


def ask(session: Any) -> dict[str, Any]:
    url, body = _ask()
    with session.httpx2_client() as client:
        first = client.post(url, json=body).json()
        second = client.post(url, json={**body, "n": first["n"]}).json()
    return {"answers": [first, second], "id": str(session.nondet.uuid4())}


async def ask_async(session: Any) -> dict[str, Any]:
    url, body = _ask()
    async with session.async_httpx2_client() as client:
        reply = await client.post(url, json=body)
    await session.nondet.asleep(0)
    return reply.json()


def unserializable(session: Any) -> Any:
    url, body = _ask()
    with session.httpx2_client() as client:
        client.post(url, json=body)
    return {"seen": {1, 2, 3}}
