"""``python -m geo.cli``: the same as the `geo` console script."""

from geo.cli import main

main()
