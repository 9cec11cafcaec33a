"""The embedded provider simulator: a real HTTP server on 127.0.0.1 that speaks every wire format.

    from seamtape.sim import serve, Fault, ScriptedPolicy

    with serve(ScriptedPolicy(["Hello!"])) as sim:
        client = anthropic.Anthropic(api_key="x", base_url=sim.anthropic_base_url)
        sim.inject(Fault.rate_limit(retry_after=0))  # the next request gets a 429

Requests are decoded and responses built by ``seamtape.wire``; a policy decides the answer.
"""

from .faults import Fault, FaultPlan
from .policies import (
    Policy,
    ScriptedPolicy,
    ScriptExhaustedError,
    StochasticPolicy,
    conversation_key,
    policy_from_spec,
    policy_spec,
)
from .server import RecordedRequest, RecordedResponse, Simulator, main, serve

__all__ = [
    "Fault",
    "FaultPlan",
    "Policy",
    "RecordedRequest",
    "RecordedResponse",
    "ScriptExhaustedError",
    "ScriptedPolicy",
    "Simulator",
    "StochasticPolicy",
    "conversation_key",
    "main",
    "policy_from_spec",
    "policy_spec",
    "serve",
]
