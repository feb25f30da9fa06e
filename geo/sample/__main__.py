"""``python -m geo.sample``: rebuild the sample district (see `geo.sample.main`)."""

from geo.sample import main

main()
