"""Credentials never reach the tape; secrets in bodies are flagged; keys do not affect matching."""

from __future__ import annotations

import json
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


def test_with_redaction_off_a_key_in_a_body_warns_naming_the_run_and_step(
    tape_path: Path,
) -> None:
    leaked = "sk-ant-" + "a1B2c3D4e5" * 3

    def server(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"ok": True})

    with (
        pytest.warns(seamtape.SecretWarning) as caught,
        seamtape.record(tape_path, redact=False) as session,
        session.httpx2_client(transport=httpx2.MockTransport(server)) as client,
    ):
        client.post("https://llm.example/v1/messages", json={"q": "hello"})
        client.post("https://llm.example/v1/messages", json={"q": f"my key is {leaked}"})
    [warning] = [w for w in caught if issubclass(w.category, seamtape.SecretWarning)]
    text = str(warning.message)
    assert f"run {session.run_id}" in text
    assert "step 2" in text
    assert leaked not in text  # the warning does not repeat the secret
    assert leaked.encode() in _tape_bytes(tape_path)  # off means off: stored as sent


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


@pytest.mark.parametrize(
    ("userinfo", "kept"),
    [("user:PASS-{t}", "user:<redacted>@"), ("tok-{t}", "://<redacted>@")],
    ids=["user and password", "token as user"],
)
def test_userinfo_in_urls_never_reaches_the_tape(
    origin, tape_path: Path, userinfo: str, kept: str
) -> None:
    secret = userinfo.format(t=secrets.token_hex(8))
    base = origin.url.replace("://", f"://{secret}@")
    with seamtape.record(tape_path, upstream=base) as rec, rec.httpx2_client() as client:
        recorded = client.post(f"{base}/json", json={"q": "hi"}).content
    on_disk = _tape_bytes(tape_path)
    assert secret.split(":")[-1].encode() not in on_disk
    with seamtape.Tape(tape_path) as tape:
        [ex] = tape.exchanges(rec.run_id)
        assert kept in ex.url and kept in (tape.run(rec.run_id).upstream or "")
    origin.stop()
    # Outside the match key: a replay sending another password still matches.
    other = origin.url.replace("://", f"://{userinfo.format(t='other')}@")
    with seamtape.replay(tape_path) as rep, rep.httpx2_client() as client:
        assert client.post(f"{other}/json", json={"q": "hi"}).content == recorded
    assert rep.digest == rec.digest


def _echo(request: httpx2.Request) -> httpx2.Response:
    """A server that answers with what it was sent: a secret in the request comes back."""
    return httpx2.Response(200, content=request.content)


def test_secrets_in_bodies_are_redacted_by_default_and_replay_bit_exact(tape_path: Path) -> None:
    leaked = "sk-ant-api03-" + secrets.token_hex(16)
    aws = "AKIA" + secrets.token_hex(8).upper()
    body = json.dumps(
        {"messages": [{"role": "user", "content": f"my keys are {leaked} and {aws}"}]}
    ).encode()
    with (
        seamtape.record(tape_path) as rec,
        rec.httpx2_client(transport=httpx2.MockTransport(_echo)) as client,
    ):
        seen = client.post("https://llm.example/v1/messages", content=body).content
    assert seen == body  # recording does not change what the agent sees
    on_disk = _tape_bytes(tape_path)
    assert leaked.encode() not in on_disk and aws.encode() not in on_disk
    with seamtape.Tape(tape_path) as tape:
        [ex] = tape.exchanges(rec.run_id)
        stored, stored_response = ex.request_bytes(), ex.response_bytes()
    assert stored.count(b"<redacted>") == 2
    # every other byte as sent
    assert stored == body.replace(leaked.encode(), b"<redacted>").replace(
        aws.encode(), b"<redacted>"
    )

    # The agent sends its real key again; redacted the same way, it matches the recording.
    with seamtape.replay(tape_path) as rep, rep.httpx2_client() as client:
        served = client.post("https://llm.example/v1/messages", content=body).content
    assert served == stored_response and b"<redacted>" in served
    assert rep.digest == rec.digest


def test_user_rules_redact_patterns_and_json_paths(tape_path: Path) -> None:
    rules = seamtape.Redaction(patterns=[r"pin=\d+"], json_paths=["$.metadata.user_key"])
    body = {"metadata": {"user_key": "hunter2"}, "q": "pin=1234, hunter2 is my password"}
    with (
        seamtape.record(tape_path, redact=rules) as rec,
        rec.httpx2_client(transport=httpx2.MockTransport(_echo)) as client,
    ):
        client.post("https://llm.example/v1/messages", json=body)
    with seamtape.Tape(tape_path) as tape:
        [ex] = tape.exchanges(rec.run_id)
        stored = json.loads(ex.request_bytes())
    assert b"pin=1234" not in _tape_bytes(tape_path)
    assert stored == {
        "metadata": {"user_key": "<redacted>"},
        # a JSON path masks whole strings only, never the same letters inside other text
        "q": "<redacted>, hunter2 is my password",
    }
    with seamtape.replay(tape_path, redact=rules) as rep, rep.httpx2_client() as client:
        client.post("https://llm.example/v1/messages", json=body)
    assert rep.digest == rec.digest


def test_a_replay_without_the_recordings_rules_diverges(tape_path: Path) -> None:
    """The control: the rules really take part in the comparison."""
    rules = seamtape.Redaction(patterns=[r"pin=\d+"])
    with (
        seamtape.record(tape_path, redact=rules) as rec,
        rec.httpx2_client(transport=httpx2.MockTransport(_echo)) as client,
    ):
        client.post("https://llm.example/v1/messages", json={"q": "pin=1234"})
    with pytest.raises(seamtape.DivergenceError, match="request body differs"):
        with seamtape.replay(tape_path) as rep, rep.httpx2_client() as client:
            client.post("https://llm.example/v1/messages", json={"q": "pin=1234"})


def test_a_bad_json_path_is_refused_when_the_rules_are_made() -> None:
    with pytest.raises(ValueError, match="JSON path"):
        seamtape.record("unused.tape", redact=seamtape.Redaction(json_paths=["metadata.key"]))
