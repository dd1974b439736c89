"""Allow ``python -m daemon`` as an alias of the ``repricerd`` console script."""

from daemon.cli import main

main()
