"""Fictional vocabulary shared by the ProsQA and ProntoQA generators (as in the published sets)."""

from __future__ import annotations

# Person names used by ProsQA (all 17 that occur in Coconut's validation split).
NAMES = (
    "Alex", "Bob", "Carol", "Davis", "Eva", "Fae", "Gabriel", "Jack", "Max", "Oliver",
    "Polly", "Rex", "Sally", "Sam", "Stella", "Tom", "Wren",
)  # fmt: skip

# Fictional concept words ending in -pus (all 38 that occur in Coconut's ProsQA validation split).
CONCEPTS = (
    "bompus", "boompus", "brimpus", "chorpus", "dumpus", "felpus", "fompus", "gerpus",
    "gorpus", "grimpus", "gwompus", "hilpus", "impus", "jelpus", "jompus", "kerpus",
    "lempus", "lorpus", "numpus", "quimpus", "rempus", "rompus", "rorpus", "scrompus",
    "shumpus", "sterpus", "storpus", "terpus", "timpus", "tumpus", "vumpus", "worpus",
    "wumpus", "yerpus", "yimpus", "yumpus", "zhorpus", "zumpus",
)  # fmt: skip

# Adjectives for ProntoQA-style properties.
PROPERTIES = (
    "blue", "red", "brown", "orange", "small", "large", "hot", "cold", "bright", "dull",
    "transparent", "opaque", "luminous", "fruity", "floral", "spicy", "sweet", "sour",
    "bitter", "happy", "sad", "feisty", "kind", "mean", "nervous", "shy", "aggressive",
    "amenable", "wooden", "metallic", "liquid", "angry",
)  # fmt: skip


def plural(concept: str) -> str:
    """``wumpus -> wumpuses``."""
    return concept + "es"
