"""Lenses over a tape: pure functions of a run's steps (the only I/O is reading the tape).

- ``seamtape.lenses.diff``: align two runs step by step, name the first divergence and
  what changed there, compare tool-call trajectories, and fingerprint a run's behaviour
  with volatile fields (ids, timestamps, latency, request ids) left out.
- ``seamtape.lenses.textconv``: a tape as stable text for ``git diff``.
- ``seamtape.lenses.lint``: lint rules over a run, the same rules as live guards (a callable
  the session hands the cursor), and the watcher that follows a tape being recorded.
"""
