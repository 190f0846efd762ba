"""The architecture as a graph drawn from the topology, so no picture of it can drift.

Two renderings share one graph: a Mermaid flowchart (README.md carries it between
markers, a test fails when they differ, ``conveyor diagram`` prints a fresh one) and the
local console's live diagram, which lays the graph out in columns per pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.topology import HttpRoute, Kind, SqsTrigger, Topology

ROUTE = "route"
FUNCTION = "fn"
_WRITES = ("Put", "Update", "Publish", "Send")
_SHAPES = {
    ROUTE: ("([", "])"),
    FUNCTION: ("(", ")"),
    Kind.TOPIC: ("{{", "}}"),
    Kind.QUEUE: ("[/", "/]"),
    Kind.TABLE: ("[(", ")]"),
    Kind.BUCKET: ("[(", ")]"),
    Kind.SECRET: ("[[", "]]"),
}


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    """``route``, ``fn`` or a resource kind (``queue``, ``topic``, ...)."""
    name: str
    label: str


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""
    dead_letter: bool = False


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def _id(kind: str, name: str) -> str:
    return f"{kind}_{name.replace('-', '_').strip('/')}"


def graph(topology: Topology) -> Graph:
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []

    def node(kind: str, name: str, label: str | None = None) -> str:
        identifier = _id(kind, name)
        if identifier not in nodes:
            default = f"λ {name}" if kind == FUNCTION else f"{kind} {name}"
            nodes[identifier] = Node(identifier, kind, name, label or default)
        return identifier

    for function in topology.functions:
        fn = node(FUNCTION, function.name)
        if isinstance(function.trigger, HttpRoute):
            path = function.trigger.path
            edges.append(Edge(node(ROUTE, path, f"POST {path}"), fn))
        elif isinstance(function.trigger, SqsTrigger):
            queue = topology.queue(function.trigger.queue)
            source = node(Kind.QUEUE, queue.name)
            edges.append(Edge(source, fn))
            edges.append(
                Edge(
                    source,
                    node(Kind.QUEUE, queue.dlq_name),
                    f"after {queue.dead_letter.max_receive_count} receives",
                    dead_letter=True,
                )
            )
        for grant in function.grants:
            if grant.kind == Kind.QUEUE or not any(
                verb in action for action in grant.actions for verb in _WRITES
            ):
                continue  # reads and dead-letter sends would only clutter the picture
            edges.append(Edge(fn, node(grant.kind, grant.resource)))
    for sub in topology.subscriptions:
        edges.append(Edge(node(Kind.TOPIC, sub.topic), node(Kind.QUEUE, sub.queue)))
    for note in topology.notifications:
        edges.append(
            Edge(node(Kind.BUCKET, note.bucket), node(Kind.QUEUE, note.queue), note.prefix)
        )
    return Graph(tuple(nodes.values()), tuple(dict.fromkeys(edges)))


def mermaid(topology: Topology) -> str:
    drawing = graph(topology)
    lines = ["flowchart LR"]
    for n in drawing.nodes:
        left, right = _SHAPES.get(n.kind, ("[", "]"))
        lines.append(f'    {n.id}{left}"{n.label}"{right}')
    for e in drawing.edges:
        if e.dead_letter:
            lines.append(f"    {e.source} -. {e.label} .-> {e.target}")
        elif e.label:
            lines.append(f"    {e.source} -- {e.label} --> {e.target}")
        else:
            lines.append(f"    {e.source} --> {e.target}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Pipeline:
    """One connected part of the graph, laid out left to right in columns."""

    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    columns: dict[str, int]


def pipelines(drawing: Graph) -> list[Pipeline]:
    """The graph's connected parts, each titled by its entry route; a node's column is
    its longest distance from an entry, with edges that loop back left out of the count
    (the media bucket both feeds the image queue and receives the variants)."""
    neighbours: dict[str, set[str]] = {n.id: set() for n in drawing.nodes}
    outgoing: dict[str, list[str]] = {n.id: [] for n in drawing.nodes}
    for e in drawing.edges:
        neighbours[e.source].add(e.target)
        neighbours[e.target].add(e.source)
        outgoing[e.source].append(e.target)

    seen: set[str] = set()
    found: list[Pipeline] = []
    for start in drawing.nodes:
        if start.id in seen or start.kind != ROUTE:
            continue
        part, frontier = {start.id}, [start.id]
        while frontier:
            for other in neighbours[frontier.pop()] - part:
                part.add(other)
                frontier.append(other)
        seen |= part
        members = tuple(n for n in drawing.nodes if n.id in part)
        edges = tuple(e for e in drawing.edges if e.source in part)
        entries = [n.id for n in members if n.kind == ROUTE]
        found.append(
            Pipeline(
                title=" + ".join(n.label for n in members if n.kind == ROUTE),
                nodes=members,
                edges=edges,
                columns=_columns(entries, outgoing),
            )
        )
    return found


def _columns(entries: list[str], outgoing: dict[str, list[str]]) -> dict[str, int]:
    forward: dict[str, list[str]] = {}
    finished: list[str] = []
    open_path: set[str] = set()

    def visit(node: str) -> None:  # depth-first; an edge into the open path loops back
        open_path.add(node)
        forward[node] = [t for t in outgoing[node] if t not in open_path]
        for target in forward[node]:
            if target not in forward:
                visit(target)
        open_path.discard(node)
        finished.append(node)

    for entry in entries:
        if entry not in forward:
            visit(entry)
    column = dict.fromkeys(forward, 0)
    for node in reversed(finished):  # reverse finishing order is a topological order
        for target in forward[node]:
            column[target] = max(column[target], column[node] + 1)
    return column
