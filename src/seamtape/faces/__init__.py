"""The faces: the command line, the pytest plugin and the rendering they share.

They hold no logic that a library user could not call.
"""
