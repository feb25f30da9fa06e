"""The actions of the system, framework-neutral: plain arguments in, result dataclasses out,
errors raised (never printed); `geo.cli` and `geo.api` are thin adapters over them."""
