"""ProsQA graphs: reachability, shortest paths, structural checks and dataset statistics.

A ProsQA record keeps its graph in `Record.meta`: ``idx_to_symbol`` (node names), ``edges``
(``[parent, child]`` pairs), ``root`` (the person asked about), ``target`` (the answer concept)
and ``neg_target`` (the distractor).
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from rim.data.records import Record

GRAPH_FIELDS = ("idx_to_symbol", "edges", "root", "target", "neg_target")


def children_of(n_nodes: int, edges: Sequence[Sequence[int]]) -> list[list[int]]:
    """Adjacency lists: ``children_of(n, edges)[u]`` are the children of node ``u``."""
    children: list[list[int]] = [[] for _ in range(n_nodes)]
    for parent, child in edges:
        children[parent].append(child)
    return children


def distances_from(children: Sequence[Sequence[int]], start: int) -> dict[int, int]:
    """Breadth-first distance from `start` to every node reachable from it (itself at 0)."""
    dist = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in children[node]:
            if child not in dist:
                dist[child] = dist[node] + 1
                queue.append(child)
    return dist


def count_shortest_paths(children: Sequence[Sequence[int]], start: int, end: int) -> int:
    """How many distinct shortest paths lead from `start` to `end` (0 if unreachable)."""
    dist = distances_from(children, start)
    if end not in dist:
        return 0
    ways = {start: 1}
    for node in sorted(dist, key=dist.__getitem__):
        for child in children[node]:
            if dist.get(child) == dist[node] + 1:
                ways[child] = ways.get(child, 0) + ways[node]
    return ways[end]


def step_sentence(symbols: Sequence[str], parent: int, child: int, is_entity: bool) -> str:
    """The sentence for one edge: ``Tom is a terpus.`` or ``Every terpus is a brimpus.``."""
    if is_entity:
        return f"{symbols[parent]} is a {symbols[child]}."
    return f"Every {symbols[parent]} is a {symbols[child]}."


def graph_problems(record: Record) -> list[str]:
    """Structural problems of a ProsQA record (empty when it is well formed).

    Checks: graph fields present; the answer concept is reachable from the root and the
    distractor is not; the steps spell one shortest path from the root to the answer, edge by
    edge; the question has one sentence per edge and asks about root, answer and distractor;
    the answer names root and answer concept.
    """
    meta = record.meta
    missing = [key for key in GRAPH_FIELDS if key not in meta]
    if missing:
        return [f"missing graph fields: {', '.join(missing)}"]
    symbols: list[str] = meta["idx_to_symbol"]
    edges = [tuple(edge) for edge in meta["edges"]]
    root, target, neg = meta["root"], meta["target"], meta["neg_target"]
    children = children_of(len(symbols), edges)
    parents = {child for _, child in edges}
    dist = distances_from(children, root)
    problems = []
    if target not in dist:
        problems.append("answer concept not reachable from the root")
    if neg in dist:
        problems.append("distractor concept reachable from the root")
    path = _path_from_steps(record.steps, symbols, edges, parents)
    if path is None:
        problems.append("steps do not spell a path of graph edges")
    elif path[0] != root or path[-1] != target:
        problems.append("steps do not lead from the root to the answer")
    elif target in dist and len(path) - 1 != dist[target]:
        problems.append("steps are not a shortest path")
    name, answer, distractor = symbols[root], symbols[target], symbols[neg]
    question_ends = (
        f"Is {name} a {answer} or {distractor}?",
        f"Is {name} a {distractor} or {answer}?",
    )
    if not record.question.endswith(question_ends):
        problems.append("question does not ask about root, answer and distractor")
    sentences = {step_sentence(symbols, p, c, p not in parents) for p, c in edges}
    stated = record.question.count(". ") + record.question.count(".\n")
    if not all(s in record.question for s in sentences) or stated != len(edges):
        problems.append("question does not state each edge exactly once")
    if record.answer != f"{name} is a {answer}.":
        problems.append("answer does not name the root and the answer concept")
    return problems


def _path_from_steps(
    steps: Sequence[str],
    symbols: Sequence[str],
    edges: Sequence[tuple[int, ...]],
    parents: set[int],
) -> list[int] | None:
    sentence_to_edge = {step_sentence(symbols, p, c, p not in parents): (p, c) for p, c in edges}
    path: list[int] = []
    for step in steps:
        edge = sentence_to_edge.get(step)
        if edge is None or (path and path[-1] != edge[0]):
            return None
        path = path or [edge[0]]
        path.append(edge[1])
    return path or None


def prosqa_statistics(records: Sequence[Record]) -> dict[str, Any]:
    """Graph statistics of ProsQA records, as reported for the published set.

    Keys: ``records``, ``nodes`` / ``edges`` (means), ``shortest_path`` (mean length from the
    root to the answer), ``shortest_paths`` (mean number of them), ``steps`` (a Counter of step
    counts), ``min_steps`` and ``max_steps``.
    """
    nodes, edges, lengths, counts = [], [], [], []
    steps: Counter[int] = Counter()
    for record in records:
        meta = record.meta
        children = children_of(len(meta["idx_to_symbol"]), meta["edges"])
        dist = distances_from(children, meta["root"])
        nodes.append(len(meta["idx_to_symbol"]))
        edges.append(len(meta["edges"]))
        lengths.append(dist.get(meta["target"], 0))
        counts.append(count_shortest_paths(children, meta["root"], meta["target"]))
        steps[len(record.steps)] += 1
    if not records:
        raise ValueError("no records")
    return {
        "records": len(records),
        "nodes": statistics.fmean(nodes),
        "edges": statistics.fmean(edges),
        "shortest_path": statistics.fmean(lengths),
        "shortest_paths": statistics.fmean(counts),
        "steps": steps,
        "min_steps": min(steps),
        "max_steps": max(steps),
    }
