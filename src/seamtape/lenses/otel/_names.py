"""The attribute names a trace carries, taken from ``opentelemetry-semantic-conventions``.

The GenAI names are still incubating there; importing them (rather than typing them) means a
rename in the conventions shows up as an import error or a failing test, not a silent typo.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv.attributes import (
    error_attributes,
    http_attributes,
    server_attributes,
    service_attributes,
    url_attributes,
)

OPERATION = _gen_ai.GEN_AI_OPERATION_NAME
PROVIDER = _gen_ai.GEN_AI_PROVIDER_NAME
AGENT_NAME = _gen_ai.GEN_AI_AGENT_NAME
REQUEST_MODEL = _gen_ai.GEN_AI_REQUEST_MODEL
REQUEST_STREAM = _gen_ai.GEN_AI_REQUEST_STREAM
REQUEST_MAX_TOKENS = _gen_ai.GEN_AI_REQUEST_MAX_TOKENS
RESPONSE_MODEL = _gen_ai.GEN_AI_RESPONSE_MODEL
RESPONSE_ID = _gen_ai.GEN_AI_RESPONSE_ID
FINISH_REASONS = _gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
USAGE_INPUT = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
USAGE_OUTPUT = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
USAGE_CACHE_READ = _gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
USAGE_CACHE_CREATION = _gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
INPUT_MESSAGES = _gen_ai.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES = _gen_ai.GEN_AI_OUTPUT_MESSAGES
SYSTEM_INSTRUCTIONS = _gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS
TOOL_NAME = _gen_ai.GEN_AI_TOOL_NAME
TOOL_TYPE = _gen_ai.GEN_AI_TOOL_TYPE
TOOL_CALL_ID = _gen_ai.GEN_AI_TOOL_CALL_ID
TOOL_ARGUMENTS = _gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS
TOOL_RESULT = _gen_ai.GEN_AI_TOOL_CALL_RESULT
LEGACY_SYSTEM = _gen_ai.GEN_AI_SYSTEM  # read on ingest only: older traces name the provider so

SERVICE_NAME = service_attributes.SERVICE_NAME
SERVER_ADDRESS = server_attributes.SERVER_ADDRESS
SERVER_PORT = server_attributes.SERVER_PORT
ERROR_TYPE = error_attributes.ERROR_TYPE
HTTP_METHOD = http_attributes.HTTP_REQUEST_METHOD
HTTP_STATUS = http_attributes.HTTP_RESPONSE_STATUS_CODE
URL_FULL = url_attributes.URL_FULL

# The event the GenAI conventions define for opt-in message content (not in the package yet).
CONTENT_EVENT = "gen_ai.client.inference.operation.details"

_Operation = _gen_ai.GenAiOperationNameValues
_Provider = _gen_ai.GenAiProviderNameValues

MODEL_OPERATIONS = frozenset(
    {
        _Operation.CHAT.value,
        _Operation.GENERATE_CONTENT.value,
        _Operation.TEXT_COMPLETION.value,
    }
)

# Step.provider -> gen_ai.provider.name
_PROVIDERS = {
    "anthropic": _Provider.ANTHROPIC.value,
    "openai": _Provider.OPENAI.value,
    "gemini": _Provider.GCP_GEMINI.value,
    "bedrock": _Provider.AWS_BEDROCK.value,
}


def provider_of(step_provider: str) -> str:
    return _PROVIDERS.get(step_provider, step_provider)


def operation_of(api: str) -> str:
    """Gemini's generateContent is its own operation in the conventions; the rest are chats."""
    if api == "gemini.generate":
        return _Operation.GENERATE_CONTENT.value
    return _Operation.CHAT.value


def api_of(provider_name: str) -> str:
    """The wire format an ingested call of ``gen_ai.provider.name`` is stored in."""
    name = provider_name.lower()
    if name == _Provider.ANTHROPIC.value:
        return "anthropic.messages"
    if name.startswith(("gcp.", "gemini", "vertex")):
        return "gemini.generate"
    if name in (_Provider.AWS_BEDROCK.value, "bedrock"):
        return "bedrock.converse"
    return "openai.chat"  # OpenAI's, and the format most other providers also speak
