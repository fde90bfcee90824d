"""Configs that ship with the package (package data, read with importlib.resources):
yinyang_demo.toml, the config of `neurosim demo` (`make demo`)."""
