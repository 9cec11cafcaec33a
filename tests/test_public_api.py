"""The public face: every exported name resolves, and importing seamtape loads no SDK."""

from __future__ import annotations

import subprocess
import sys

import seamtape


def test_every_public_name_resolves() -> None:
    for name in seamtape.__all__:
        assert getattr(seamtape, name) is not None
    assert callable(seamtape.fork) and callable(seamtape.blame)


def test_import_and_cli_help_load_no_sdk_or_http_library() -> None:
    heavy = ["anthropic", "openai", "google.genai", "botocore", "boto3", "httpx", "httpx2", "dask"]
    probe = f"import sys, seamtape, seamtape.faces.cli; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
