"""pytest plugin: tapes in tests (markers, fixtures and options)."""
