"""ProsQA: logical reasoning over a random DAG of fictional concepts (Coconut's procedure).

Graph construction follows the algorithm published with Coconut's ProsQA (as we read it): nodes
0 and 1 are people; every new node takes ``Poisson(1.5)`` parents, drawn (weighted towards deeper
nodes, weight ``1.5*depth + 1``) with probability 0.35 among nodes that do not descend from node
1, 0.35 among nodes that do not descend from node 0, and 0.3 among all nodes; a label (bit 1:
descends from node 0, bit 2: descends from node 1) is propagated with bitwise OR. A node without
parents is one more person. The question is about node 0 or node 1, whichever reaches the deeper
leaf that the other does not reach (the root): the answer concept is such a deepest leaf (3 to 6
hops away), the distractor a leaf that only the other person reaches, so it is never reachable
from the root. Two details are fitted to the published validation split rather than documented:
how often a parentless node appears (`NEW_PERSON_RATE`; otherwise zero parents are redrawn) and
the choice of the root as the person with the deeper exclusive leaf.
The steps are one shortest path (a random one when there are several).

Records use Coconut's layout: ``question`` (one shuffled sentence per edge, then
``Is NAME a X or Y?``), ``steps``, ``answer`` (``NAME is a X.``) and the graph in ``meta``
(``idx_to_symbol``, ``edges``, ``root``, ``target``, ``neg_target``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from rim.common.errors import RimInputError
from rim.data.generators.vocab import CONCEPTS, NAMES
from rim.data.prosqa_graph import children_of, distances_from, step_sentence
from rim.data.records import Record

MEAN_PARENTS = 1.5
DEPTH_WEIGHT = 1.5
# A node that draws zero parents becomes a new person only this often (else the count is drawn
# again): this matches the published split's share of extra people (about 0.5 per graph) and
# its in-degree histogram.
NEW_PERSON_RATE = 0.09
NODES_MEAN, NODES_SD, NODES_MIN, NODES_MAX = 22.7, 2.0, 17, 28
MIN_HOPS, MAX_HOPS = 3, 6
_MAX_TRIES = 1000


def generate_prosqa(n: int, seed: int, *, min_hops: int = MIN_HOPS, max_hops: int = MAX_HOPS) -> list[Record]:
    """`n` ProsQA records whose answer lies `min_hops` to `max_hops` steps from the root."""
    if n < 1:
        raise RimInputError(f"n must be at least 1, got {n}")
    if not 1 <= min_hops <= max_hops:
        raise RimInputError(f"need 1 <= min_hops <= max_hops, got {min_hops}, {max_hops}")
    rng = random.Random(seed)
    return [_one_record(rng, min_hops, max_hops) for _ in range(n)]


def _one_record(rng: random.Random, min_hops: int, max_hops: int) -> Record:
    for _ in range(_MAX_TRIES):
        n_nodes = min(NODES_MAX, max(NODES_MIN, round(rng.gauss(NODES_MEAN, NODES_SD))))
        edges = _build_graph(rng, n_nodes)
        picked = _pick_question(rng, n_nodes, edges, min_hops, max_hops)
        if picked is not None:
            return _render(rng, n_nodes, edges, *picked)
    raise RimInputError(f"could not build a ProsQA graph with {min_hops}-{max_hops} hops")


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _build_graph(rng: random.Random, n_nodes: int) -> list[tuple[int, int]]:
    labels = [1, 2]
    depth = [0, 0]
    groups: dict[int, list[int]] = {0: [], 1: [0], 2: [1], 3: []}
    edges: list[tuple[int, int]] = []
    for node in range(2, n_nodes):
        n_parents = _poisson(rng, MEAN_PARENTS)
        while n_parents == 0 and rng.random() >= NEW_PERSON_RATE:
            n_parents = _poisson(rng, MEAN_PARENTS)
        draw = rng.random()
        if draw <= 0.35:
            candidates = groups[0] + groups[1]
        elif draw <= 0.7:
            candidates = groups[0] + groups[2]
        else:
            candidates = list(range(node))
        parents = _weighted_sample(
            rng,
            candidates,
            [DEPTH_WEIGHT * depth[c] + 1 for c in candidates],
            min(n_parents, len(candidates)),
        )
        label = 0
        for parent in parents:
            label |= labels[parent]
            edges.append((parent, node))
        labels.append(label)
        depth.append(1 + min((depth[p] for p in parents), default=-1))
        groups[label].append(node)
    return edges


def _weighted_sample(rng: random.Random, items: Sequence[int], weights: Sequence[float], k: int) -> list[int]:
    pool, pool_weights, chosen = list(items), list(weights), []
    for _ in range(k):
        index = rng.choices(range(len(pool)), weights=pool_weights)[0]
        chosen.append(pool.pop(index))
        pool_weights.pop(index)
    return chosen


def _pick_question(
    rng: random.Random,
    n_nodes: int,
    edges: Sequence[tuple[int, int]],
    min_hops: int,
    max_hops: int,
) -> tuple[int, int, int] | None:
    """Choose ``(root, target, neg_target)``, or None when the graph has no fitting question.

    Each person's candidate answers are the leaves only that person reaches, at most
    `max_hops` away; the root is the person with the deeper candidate (ties at random), the
    answer one of its deepest candidates, the distractor any candidate of the other person.
    """
    children = children_of(n_nodes, edges)
    reach = [distances_from(children, 0), distances_from(children, 1)]
    leaves = [[
        node for node in range(n_nodes)
        if not children[node] and node in reach[person] and node not in reach[1 - person]
        and reach[person][node] <= max_hops
    ] for person in (0, 1)]  # fmt: skip
    if not leaves[0] or not leaves[1]:
        return None
    depth = [max(reach[person][node] for node in leaves[person]) for person in (0, 1)]
    root = rng.randrange(2) if depth[0] == depth[1] else depth.index(max(depth))
    if depth[root] < min_hops:
        return None
    target = rng.choice([node for node in leaves[root] if reach[root][node] == depth[root]])
    return root, target, rng.choice(leaves[1 - root])


def _shortest_path(
    rng: random.Random, n_nodes: int, edges: Sequence[tuple[int, int]], root: int, target: int
) -> list[int]:
    dist = distances_from(children_of(n_nodes, edges), root)
    path = [target]
    while path[-1] != root:
        node = path[-1]
        parents = [p for p, c in edges if c == node and dist.get(p) == dist[node] - 1]
        path.append(rng.choice(parents))
    return path[::-1]


def _render(
    rng: random.Random,
    n_nodes: int,
    edges: list[tuple[int, int]],
    root: int,
    target: int,
    neg_target: int,
) -> Record:
    has_parent = {child for _, child in edges}
    people = [node for node in range(n_nodes) if node not in has_parent]
    names = iter(rng.sample(NAMES, len(people)))
    concepts = iter(rng.sample(CONCEPTS, n_nodes - len(people)))
    symbols = [next(names) if node not in has_parent else next(concepts) for node in range(n_nodes)]
    sentences = [step_sentence(symbols, p, c, p not in has_parent) for p, c in edges]
    rng.shuffle(sentences)
    options = [symbols[target], symbols[neg_target]]
    rng.shuffle(options)
    question = " ".join(sentences) + f" Is {symbols[root]} a {options[0]} or {options[1]}?"
    path = _shortest_path(rng, n_nodes, edges, root, target)
    steps = tuple(
        step_sentence(symbols, p, c, p not in has_parent) for p, c in zip(path, path[1:], strict=False)
    )
    meta = {
        "idx_to_symbol": symbols,
        "edges": [list(edge) for edge in edges],
        "root": root,
        "target": target,
        "neg_target": neg_target,
    }
    return Record(question, steps, f"{symbols[root]} is a {symbols[target]}.", meta)
