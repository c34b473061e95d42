"""ProntoQA-style true/false questions: a 5-hop chain over a fictional ontology, with distractors.

The entity belongs to concept ``c0``; rules ``c0 -> c1 -> ... -> c4`` (``Every c0 is a c1.``,
``Each c1 is a c2.``, ``C2puses are c3puses.``) lead to a property of ``c4`` (``C4puses are not
spicy.``). Distractors: every chain concept also has a property of its own, and a separate
branch of three concepts (``Every d0 is a d1.``, ``Each d2 is a d1.``) gives ``d1`` the opposite
of the queried property, so the question cannot be answered by matching words; the ontology
stays consistent (no concept gets both a property and its negation). The question lists all
rules shuffled, then the entity fact, then ``True or false: NAME is [not] PROPERTY.``

Steps are sentence pairs, one per hop (what the entity is, then the rule applied):
``NAME is a c0. Every c0 is a c1.``, ..., ``NAME is a c4. C4puses are not spicy.``
The answer is ``True`` or ``False`` (half each).
"""

from __future__ import annotations

import random

from rim.common.errors import RimInputError
from rim.data.generators.vocab import CONCEPTS, NAMES, PROPERTIES, plural
from rim.data.records import Record

HOPS = 5
DISTRACTORS = 3


def generate_prontoqa(n: int, seed: int, *, hops: int = HOPS) -> list[Record]:
    """`n` ProntoQA-style records whose proof takes `hops` steps (2 to 10)."""
    if n < 1:
        raise RimInputError(f"n must be at least 1, got {n}")
    if not 2 <= hops <= 10:
        raise RimInputError(f"hops must be between 2 and 10, got {hops}")
    rng = random.Random(seed)
    return [_one_record(rng, hops) for _ in range(n)]


def is_a(rng: random.Random, child: str, parent: str) -> str:
    """A subtype rule in one of ProntoQA's phrasings."""
    form = rng.randrange(3)
    if form == 0:
        return f"Every {child} is a {parent}."
    if form == 1:
        return f"Each {child} is a {parent}."
    return f"{plural(child).capitalize()} are {plural(parent)}."


def has_property(rng: random.Random, concept: str, prop: str, positive: bool) -> str:
    """A property rule in one of ProntoQA's phrasings, negated unless `positive`."""
    verb = "is" if positive else "is not"
    form = rng.randrange(3)
    if form == 0:
        return f"Every {concept} {verb} {prop}."
    if form == 1:
        return f"Each {concept} {verb} {prop}."
    return f"{plural(concept).capitalize()} are {'' if positive else 'not '}{prop}."


def _one_record(rng: random.Random, hops: int) -> Record:
    name = rng.choice(NAMES)
    words = rng.sample(CONCEPTS, hops + DISTRACTORS)
    chain, extras = words[:hops], words[hops:]
    props = rng.sample(PROPERTIES, hops + 2)
    query_prop = props[hops - 1]
    chain_positive = rng.random() < 0.5
    rules, steps = [], []
    for i, concept in enumerate(chain):
        if i + 1 < hops:
            rule = is_a(rng, concept, chain[i + 1])
            # every chain concept but the last also has a property of its own (a distractor)
            rules.append(has_property(rng, concept, props[i], rng.random() < 0.5))
        else:
            rule = has_property(rng, concept, query_prop, chain_positive)
        rules.append(rule)
        steps.append(f"{name} is a {concept}. {rule}")
    # a separate branch d0 -> d1 <- d2 where d1 has the opposite of the queried property
    rules.append(is_a(rng, extras[0], extras[1]))
    rules.append(is_a(rng, extras[2], extras[1]))
    rules.append(has_property(rng, extras[1], query_prop, not chain_positive))
    rules.append(has_property(rng, extras[0], props[hops], rng.random() < 0.5))
    rules.append(has_property(rng, extras[2], props[hops + 1], rng.random() < 0.5))
    rng.shuffle(rules)
    answer = rng.random() < 0.5
    asked_positive = chain_positive if answer else not chain_positive
    claim = f"{name} is {'' if asked_positive else 'not '}{query_prop}."
    question = " ".join(rules) + f" {name} is a {chain[0]}. True or false: {claim}"
    return Record(question, tuple(steps), "True" if answer else "False")
