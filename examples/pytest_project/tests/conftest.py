"""Nothing to configure: pyproject.toml's [tool.seamtape] names the simulator policy.

To record against the real API instead, run
``pytest --tape-mode=rewrite --tape-upstream https://api.anthropic.com`` with a real key.
"""
