"""The engine: fork, blame and its statistics, mutations, and the replay check.

Each module is imported where it is used; this package re-exports nothing, so that
``seamtape.engine.fork`` stays the module and ``seamtape.fork`` the function.
"""
