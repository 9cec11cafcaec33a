"""``python -m seamtape``: the command line."""

from seamtape.faces.cli import main

main()
