"""Credentials never reach the tape; secrets in bodies are flagged; keys do not affect matching."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx2
import pytest

import seamtape

SECRET_REQUEST_HEADERS = ["Authorization", "x-api-key", "api-key", "x-goog-api-key", "Cookie"]


def _tape_bytes(path: Path) -> bytes:
    """Every byte of the tape on disk, its write-ahead log included."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_credential_headers_never_reach_the_tape_file(tape_path: Path) -> None:
    sent = {name: f"{name}-secret-{secrets.token_hex(12)}" for name in SECRET_REQUEST_HEADERS}
    cookie = f"session={secrets.token_hex(16)}; HttpOnly"
    server_saw: dict[str, str] = {}

    def server(request: httpx2.Request) -> httpx2.Response:
        server_saw.update({name: request.headers[name] for name in sent})
        return httpx2.Response(200, headers={"Set-Cookie": cookie}, json={"ok": True})

    with (
        seamtape.record(tape_path) as session,
        session.httpx2_client(transport=httpx2.MockTransport(server)) as client,
    ):
        reply = client.post("https://llm.example/v1/messages", headers=sent, json={"q": "hi"})
        on_disk_while_open = _tape_bytes(tape_path)
    on_disk = _tape_bytes(tape_path)

    assert server_saw == sent  # recording does not change what is sent
    assert reply.headers["set-cookie"] == cookie  # nor what the agent sees
    for value in [*sent.values(), cookie]:
        assert value.encode() not in on_disk_while_open
        assert value.encode() not in on_disk
    with seamtape.Tape(tape_path) as tape:
        [ex] = tape.exchanges(session.run_id)
    stored = dict(ex.request_headers)
    assert all(name in stored and stored[name] != sent[name] for name in sent)
    assert [k.lower() for k, _ in ex.response_headers].count("set-cookie") == 1


@pytest.mark.parametrize("param", ["key", "api_key"])
def test_query_string_api_keys_are_masked_in_the_stored_url(tape_path: Path, param: str) -> None:
    secret = f"AIza{secrets.token_hex(18)}"
    url = f"https://llm.example/v1beta/models/m:generateContent?{param}={secret}&alt=sse"
    seen_by_server: list[str] = []

    def server(request: httpx2.Request) -> httpx2.Response:
        seen_by_server.append(str(request.url))
        return httpx2.Response(200, json={"ok": True})

    with (
        seamtape.record(tape_path) as session,
        session.httpx2_client(transport=httpx2.MockTransport(server)) as client,
    ):
        client.post(url, json={})
    assert seen_by_server == [url]
    assert secret.encode() not in _tape_bytes(tape_path)
    with seamtape.Tape(tape_path) as tape:
        [ex] = tape.exchanges(session.run_id)
    assert ex.url.startswith("https://llm.example/v1beta/models/m:generateContent?")
    assert f"{param}=" in ex.url and "alt=sse" in ex.url


def test_a_key_in_a_request_body_warns_naming_the_run_and_step(tape_path: Path) -> None:
    leaked = "sk-ant-" + "a1B2c3D4e5" * 3

    def server(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"ok": True})

    with (
        pytest.warns(seamtape.SecretWarning) as caught,
        seamtape.record(tape_path) as session,
        session.httpx2_client(transport=httpx2.MockTransport(server)) as client,
    ):
        client.post("https://llm.example/v1/messages", json={"q": "hello"})
        client.post("https://llm.example/v1/messages", json={"q": f"my key is {leaked}"})
    [warning] = [w for w in caught if issubclass(w.category, seamtape.SecretWarning)]
    text = str(warning.message)
    assert f"run {session.run_id}" in text
    assert "step 2" in text
    assert leaked not in text  # the warning does not repeat the secret


def test_a_body_without_secrets_does_not_warn(tape_path: Path, recwarn) -> None:
    def server(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"text": "ask-me-anything about task-management"})

    with (
        seamtape.record(tape_path) as session,
        session.httpx2_client(transport=httpx2.MockTransport(server)) as client,
    ):
        client.post("https://llm.example/v1/messages", json={"q": "risk-averse desk-top"})
    assert [w for w in recwarn if issubclass(w.category, seamtape.SecretWarning)] == []


@pytest.mark.parametrize("header", SECRET_REQUEST_HEADERS)
def test_replay_with_a_different_credential_still_matches(
    origin, tape_path: Path, header: str
) -> None:
    def ask(session: seamtape.Session, credential: str) -> bytes:
        with session.httpx2_client() as client:
            reply = client.post(
                f"{origin.url}/json?key={credential}",
                headers={header: credential},
                json={"messages": [{"role": "user", "content": "hi"}]},
            )
            return reply.content

    with seamtape.record(tape_path) as rec:
        recorded = ask(rec, "sk-recording-" + secrets.token_hex(8))
    origin.stop()
    with seamtape.replay(tape_path) as rep:
        replayed = ask(rep, "sk-replaying-" + secrets.token_hex(8))
    assert replayed == recorded
    assert rep.digest == rec.digest


def test_replay_through_the_sdk_with_another_api_key_matches(origin, tape_path: Path) -> None:
    anthropic = pytest.importorskip("anthropic")

    def ask(session: seamtape.Session, api_key: str) -> bytes:
        client = anthropic.Anthropic(
            api_key=api_key, base_url=f"{origin.url}/json", http_client=session.httpx2_client()
        )
        raw = client.messages.with_raw_response.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
        return raw.http_response.content

    recording_key = "sk-ant-api03-" + secrets.token_hex(20)
    with seamtape.record(tape_path) as rec:
        recorded = ask(rec, recording_key)
    assert recording_key.encode() not in _tape_bytes(tape_path)
    origin.stop()
    with seamtape.replay(tape_path) as rep:
        assert ask(rep, "sk-ant-api03-" + secrets.token_hex(20)) == recorded
    assert rep.digest == rec.digest
