"""Grids and micro-grids, pure geometry: split, codes, coverage."""
