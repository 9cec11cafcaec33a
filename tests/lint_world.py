"""Tapes for the lint tests: a small tool-using agent on each official SDK, run against the
simulator with a scripted model, recorded through seamtape.

``record(tmp_path, provider, script, ...)`` runs the agent and returns the tape's path. The
script is the simulator's ``ScriptedPolicy`` turns in arrival order: a text, or a list of
``{"name": ..., "arguments": {...}}`` calls. Tools answer from ``TOOLS`` (or ``tools=``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import seamtape
from seamtape import sim

PROVIDERS = ("anthropic", "openai", "gemini")

Tool = Callable[[dict[str, Any]], tuple[str, bool]]  # arguments -> (content, is_error)

SCHEMAS: dict[str, dict[str, Any]] = {
    "get_weather": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "fetch_url": {
        "type": "object",
        "properties": {"url": {"type": "string"}},
        "required": ["url"],
    },
    "read_file": {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
    },
    "delegate": {
        "type": "object",
        "properties": {"agent": {"type": "string"}, "task": {"type": "string"}},
        "required": ["agent", "task"],
    },
    "search": {"type": "object", "properties": {"q": {"type": "string"}}},
    "book": {"type": "object", "properties": {"q": {"type": "string"}}},
}

SYSTEMS = {
    "planner": "You are the planner. Delegate research when you need it.",
    "researcher": "You are the researcher. Search, then answer.",
}
AGENT_TOOLS = {
    "planner": ["get_weather", "fetch_url", "read_file", "delegate", "search", "book"],
    "researcher": ["search", "delegate"],
}


def _weather(args: dict[str, Any]) -> tuple[str, bool]:
    return f"{args.get('city', '?')}: 21°C and sunny", False


def _echo(name: str) -> Tool:
    return lambda args: (f"{name} ok: {json.dumps(args, sort_keys=True)}", False)


TOOLS: dict[str, Tool] = {
    "get_weather": _weather,
    "fetch_url": _echo("fetch_url"),
    "read_file": _echo("read_file"),
    "search": _echo("search"),
    "book": _echo("book"),
}


def failing(message: str = "error: service unavailable") -> Tool:
    return lambda args: (message, True)


def empty() -> Tool:
    return lambda args: ("", False)


class _Chat:
    """One conversation on one SDK: ask the model, then send tool results back."""

    def __init__(self, provider: str, client: Any, system: str, tools: list[str], task: str):
        self.provider, self.client, self.system, self.tools = provider, client, system, tools
        self.messages: list[Any] = []
        self.add_user(task)

    def add_user(self, text: str) -> None:
        if self.provider == "gemini":
            from google.genai import types

            self.messages.append(types.Content(role="user", parts=[types.Part(text=text)]))
        else:
            self.messages.append({"role": "user", "content": text})

    def ask(self) -> tuple[str, list[tuple[str, str, dict[str, Any]]]]:
        if self.provider == "anthropic":
            response = self.client.messages.create(
                model="sim-claude",
                max_tokens=512,
                system=self.system,
                messages=self.messages,
                tools=[
                    {"name": n, "description": n, "input_schema": SCHEMAS[n]} for n in self.tools
                ],
            )
            self.messages.append(
                {"role": "assistant", "content": [b.model_dump() for b in response.content]}
            )
            text = "".join(b.text for b in response.content if b.type == "text")
            calls = [
                (b.id, b.name, dict(b.input)) for b in response.content if b.type == "tool_use"
            ]
            return text, calls
        if self.provider == "openai":
            completion = self.client.chat.completions.create(
                model="sim-gpt",
                messages=[{"role": "system", "content": self.system}, *self.messages],
                tools=[
                    {"type": "function", "function": {"name": n, "parameters": SCHEMAS[n]}}
                    for n in self.tools
                ],
            )
            message = completion.choices[0].message
            self.messages.append(message.model_dump(exclude_none=True))
            calls = [
                (c.id, c.function.name, json.loads(c.function.arguments or "{}"))
                for c in message.tool_calls or []
            ]
            return message.content or "", calls
        from google.genai import types

        config = types.GenerateContentConfig(
            system_instruction=self.system,
            tools=[
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(name=n, parameters_json_schema=SCHEMAS[n])
                        for n in self.tools
                    ]
                )
            ],
        )
        response = self.client.models.generate_content(
            model="sim-gemini", contents=self.messages, config=config
        )
        self.messages.append(response.candidates[0].content)
        calls = [(c.id or "", c.name, dict(c.args or {})) for c in response.function_calls or []]
        parts = response.candidates[0].content.parts or []
        return "".join(p.text for p in parts if p.text), calls

    def add_results(self, results: list[tuple[str, str, str, bool]]) -> None:
        if not results:
            return
        if self.provider == "anthropic":
            self.messages.append(
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": i, "content": c, "is_error": e}
                        for i, _, c, e in results
                    ],
                }
            )
        elif self.provider == "openai":
            for i, _, c, _e in results:
                self.messages.append({"role": "tool", "tool_call_id": i, "content": c})
        else:
            from google.genai import types

            parts = [
                types.Part.from_function_response(
                    name=n, response={"error": c} if e else {"output": c}
                )
                for _, n, c, e in results
            ]
            self.messages.append(types.Content(role="user", parts=parts))


def client_for(provider: str, session: seamtape.Session, base_url: str, retries: int) -> Any:
    http = session.httpx2_client()
    if provider == "anthropic":
        import anthropic

        return anthropic.Anthropic(
            api_key="not-a-key", base_url=base_url, http_client=http, max_retries=retries
        )
    if provider == "openai":
        import openai

        return openai.OpenAI(
            api_key="not-a-key", base_url=base_url, http_client=http, max_retries=retries
        )
    from google import genai
    from google.genai import types

    options = types.HttpOptions(base_url=base_url, httpx_client=http)
    if retries:
        options.retry_options = types.HttpRetryOptions(
            attempts=retries + 1,
            initial_delay=0.0,
            max_delay=0.0,
            http_status_codes=[429, 500, 503],
        )
    return genai.Client(api_key="not-a-key", http_options=options)


class Agent:
    """The agent: a planner that runs tools and can delegate to sub-agents (nested loops)."""

    def __init__(
        self,
        provider: str,
        tools: dict[str, Tool],
        *,
        max_turns: int = 12,
        nudge: int = 0,
        drop_results: bool = False,
        duplicate_results: bool = False,
    ) -> None:
        self.provider, self.tools, self.max_turns = provider, tools, max_turns
        self.nudge = nudge  # after a text answer, ask "go on" this many times
        self.drop_results = drop_results
        self.duplicate_results = duplicate_results

    def __call__(self, session: seamtape.Session) -> dict[str, Any]:
        client = client_for(
            self.provider, session, session.upstream or "", getattr(self, "retries", 0)
        )
        return {"answer": self.converse(client, "planner", "Plan a day in Lisbon.")}

    def converse(self, client: Any, agent: str, task: str) -> str:
        chat = _Chat(self.provider, client, SYSTEMS[agent], AGENT_TOOLS[agent], task)
        nudges = self.nudge
        text = ""
        for _ in range(self.max_turns):
            text, calls = chat.ask()
            if not calls:
                if nudges:
                    nudges -= 1
                    chat.add_user("Go on.")
                    continue
                return text
            results = []
            for call_id, name, args in calls:
                if name == "delegate":
                    sub = str(args.get("agent", "researcher"))
                    answer = self.converse(
                        client, sub if sub in SYSTEMS else "researcher", str(args.get("task", ""))
                    )
                    results.append((call_id, name, answer, False))
                    continue
                tool = self.tools.get(name) or TOOLS.get(name) or failing(f"error: no tool {name}")
                content, is_error = tool(args)
                results.append((call_id, name, content, is_error))
            if self.drop_results:
                results = results[:-1] if len(results) > 1 else []
                if not results:
                    chat.add_user("Carry on.")
            if self.duplicate_results:
                results = results + results[-1:]
            chat.add_results(results)
        return text


BASE_URL = {
    "anthropic": "anthropic_base_url",
    "openai": "openai_base_url",
    "gemini": "gemini_base_url",
}


def record(
    tmp_path: Path,
    provider: str,
    script: Sequence[Any],
    *,
    tools: dict[str, Tool] | None = None,
    faults: dict[int, sim.Fault] | None = None,
    retries: int = 0,
    guards: Any = None,
    name: str = "lint",
    **agent_options: Any,
) -> Path:
    """Record the agent on ``provider`` against a scripted simulator; return the tape's path."""
    tape = tmp_path / f"{name}-{provider}.tape"
    agent = Agent(provider, tools or {}, **agent_options)
    agent.retries = retries  # type: ignore[attr-defined]
    with sim.serve(sim.ScriptedPolicy(list(script)), faults=faults) as simulator:
        upstream = getattr(simulator, BASE_URL[provider])
        with seamtape.record(tape, name=name, upstream=upstream, guards=guards) as session:
            try:
                session.result = agent(session)
            except Exception as exc:  # an SDK giving up is part of the run being linted
                session.result = {"error": type(exc).__name__}
    return tape


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def cli_agent(session: seamtape.Session) -> dict[str, Any]:
    """For `seamtape record --agent lint_world:cli_agent`: the Anthropic agent, no retries."""
    agent = Agent("anthropic", {})
    agent.retries = 0  # type: ignore[attr-defined]
    return agent(session)
