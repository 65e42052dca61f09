"""Hydra configuration tree of lswag-train (a package so Hydra finds it inside an installed wheel)."""
