"""Reasoning in Memory (RiM): train a language model to reason inside fixed memory blocks."""

__version__ = "0.1.0"
