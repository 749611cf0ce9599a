"""An exploration as a picture: a call-flow graph, printed as a tree or as Mermaid.

The tree of paths repeats itself (every retry of a menu leads to the same "Connecting
you to sales"), so the picture merges identical subtrees into one node: what stays is
the call flow as a person would draw it. Values returned at the end do not keep two
ends apart (a survey returns a different dict on each path); an end shows its value
when all the paths that reach it return the same one.

The caller can hang up at every point. Those branches end "hung-up" and add nothing
to the picture, so they are left out unless they show a problem (or ``hang_ups``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._paths import (
    Action,
    Branch,
    CallPath,
    Ending,
    Exploration,
    Node,
    Point,
    PointKind,
    ProblemKind,
    shorten,
)

__all__ = [
    "Diagram",
    "DiagramEdge",
    "DiagramNode",
    "build_diagram",
    "render_mermaid",
    "render_text",
]


@dataclass(slots=True)
class DiagramNode:
    id: str
    point: Point
    label: str
    #: Problems shown at this node (its own, not those further down).
    marks: set[ProblemKind] = field(default_factory=set)
    #: On a path that shows a problem.
    on_problem_path: bool = False
    #: Reached by more than one edge.
    shared: bool = False
    ending: Ending | None = None

    @property
    def problem(self) -> bool:
        return bool(self.marks) or self.on_problem_path


@dataclass(slots=True)
class DiagramEdge:
    source: str
    target: str
    label: str
    action: Action
    on_problem_path: bool = False


@dataclass(slots=True)
class Diagram:
    title: str
    summary: str
    nodes: list[DiagramNode]
    edges: list[DiagramEdge]
    #: Uneventful hang-up branches left out.
    hidden_hang_ups: int = 0

    def out_of(self, node_id: str) -> list[DiagramEdge]:
        return [e for e in self.edges if e.source == node_id]

    def node(self, node_id: str) -> DiagramNode:
        return next(n for n in self.nodes if n.id == node_id)


def _ending_label(ending: Ending, paths: list[CallPath]) -> str:
    first = paths[0].result
    values = {repr(p.result.value) for p in paths}
    value = f": {shorten(next(iter(values)), 60)}" if len(values) == 1 else ""
    if ending is Ending.COMPLETED:
        return f"completed{value}" if value else f"completed ({len(values)} values)"
    if ending is Ending.FORWARDED:
        return f"forwarded to {first.forwarded_to}{value}"
    if ending is Ending.HUNG_UP:
        return "caller hung up" + (value if value and value != ": None" else "")
    if ending is Ending.FAILED:
        return f"failed: {type(first.error).__name__}" if first.error else "failed"
    if ending is Ending.NOT_ANSWERED:
        return "busy" if first.end_reason == "busy" else "no answer"
    return "cut: still going at the bound"


def _visible(branch: Branch, hang_ups: bool) -> bool:
    if hang_ups or branch.choice.action is not Action.HANG_UP:
        return True
    path = branch.node.path
    return path is None or bool(path.problems) or path.ending is not Ending.HUNG_UP


class _Builder:
    def __init__(self, hang_ups: bool, values: bool) -> None:
        self.hang_ups = hang_ups
        self.values = values
        self.hidden = 0
        self.ids: dict[tuple[object, ...], int] = {}  # signature -> class
        self.class_of: dict[int, int] = {}  # id(tree node) -> class
        self.members: dict[int, list[Node]] = {}  # class -> tree nodes

    def classify(self, node: Node) -> int:
        """Bottom up: nodes with the same point and the same branches are one class."""
        branches = []
        for branch in node.branches:
            if not _visible(branch, self.hang_ups):
                self.hidden += 1
                continue
            branches.append((branch.label, branch.choice.action, self.classify(branch.node)))
        path = node.path
        ending: tuple[object, ...] = ()
        if path is not None:
            error = type(path.result.error).__name__ if path.result.error else None
            ending = (path.ending, path.result.forwarded_to, error, path.result.end_reason)
            ending += (tuple(sorted(k.value for k in path.problems)),)
            if self.values:
                ending += (repr(path.result.value),)
        signature = (node.point, ending, tuple(branches))
        number = self.ids.setdefault(signature, len(self.ids))
        self.class_of[id(node)] = number
        self.members.setdefault(number, []).append(node)
        return number


def build_diagram(exploration: Exploration, *, hang_ups: bool = False) -> Diagram:
    """The merged call-flow graph of an exploration."""
    # Ends that return different values stay apart, unless that keeps the picture from
    # merging at all (a value that carries the whole history, like a survey's answers).
    builder = _Builder(hang_ups, values=True)
    builder.classify(exploration.root)
    merged = _Builder(hang_ups, values=False)
    merged.classify(exploration.root)
    if len(builder.ids) > 1.5 * len(merged.ids):
        builder = merged
    nodes: dict[int, DiagramNode] = {}
    edges: list[DiagramEdge] = []
    by_key: dict[tuple[str, str, str], DiagramEdge] = {}
    order: list[DiagramNode] = []

    def visit(node: Node) -> DiagramNode:
        number = builder.class_of[id(node)]
        if number in nodes:
            nodes[number].shared = True
            return nodes[number]
        members = builder.members[number]
        shown = DiagramNode(f"n{len(nodes)}", node.point, _label(node, members))
        nodes[number] = shown
        order.append(shown)
        if node.path is not None:
            shown.ending = node.path.ending
            shown.marks.update(node.path.problems)
        for branch in node.branches:
            if not _visible(branch, hang_ups):
                continue
            # In the order a reader goes: this edge before the ones below it.
            edge = DiagramEdge(shown.id, "", branch.label, branch.choice.action)
            edges.append(edge)
            edge.target = visit(branch.node).id
            by_key[(edge.source, edge.label, edge.target)] = edge
        return shown

    visit(exploration.root)

    def edge(node: Node, branch: Branch) -> DiagramEdge | None:
        source = nodes[builder.class_of[id(node)]].id
        target = nodes.get(builder.class_of.get(id(branch.node), -1))
        return by_key.get((source, branch.label, target.id)) if target else None

    for problem in exploration.problems:
        if problem.point is not None:
            for shown in order:
                if shown.point == problem.point:
                    shown.marks.add(problem.kind)
        trail = _trail(exploration.root, problem.path)
        for node, branch in trail:
            nodes[builder.class_of[id(node)]].on_problem_path = True
            found = edge(node, branch)
            if found is not None:
                found.on_problem_path = True
                nodes[builder.class_of[id(branch.node)]].on_problem_path = True
    return Diagram(
        exploration.flow,
        exploration.summary(),
        order,
        edges,
        0 if hang_ups else builder.hidden,
    )


def _label(node: Node, members: list[Node]) -> str:
    point = node.point
    if point.kind is PointKind.DIAL:
        return "call"
    if point.kind is PointKind.SAY:
        return point.text or ""
    if point.kind is PointKind.GATHER:
        return point.text or "(gathers keys)"
    if point.kind is PointKind.WAIT:
        return "(waits for keys)"
    paths = [m.path for m in members if m.path is not None]
    assert node.path is not None
    return _ending_label(node.path.ending, paths)


def _trail(root: Node, path: CallPath) -> list[tuple[Node, Branch]]:
    """The tree's branches along ``path`` (a key pressed counts for its group)."""
    trail: list[tuple[Node, Branch]] = []
    node = root
    for step in path.steps:
        choice = step.choice
        for branch in node.branches:
            if branch.choice == choice or (
                choice.action is Action.PRESS
                and branch.choice.action is Action.PRESS
                and choice.detail in branch.entries
            ):
                trail.append((node, branch))
                node = branch.node
                break
        else:
            break
    return trail


# -- the terminal ------------------------------------------------------------------------


def _line(node: DiagramNode, width: int = 72) -> str:
    kind = node.point.kind
    if kind is PointKind.SAY:
        text = f"says {shorten(node.label, width)!r}"
    elif kind is PointKind.GATHER:
        text = f"asks {shorten(node.label, width)!r}" if node.point.text else node.label
    elif kind is PointKind.END:
        text = f"■ {node.label}"
    else:
        text = node.label
    if node.marks:
        text += "  ⚠ " + ", ".join(sorted(k.value for k in node.marks))
    return text


def render_text(exploration: Exploration, *, hang_ups: bool = False) -> str:
    """The call flow as an indented tree; a shared part is printed once, then referred to."""
    diagram = build_diagram(exploration, hang_ups=hang_ups)
    shared = [n for n in diagram.nodes if n.shared]
    numbers = {n.id: i + 1 for i, n in enumerate(shared)}
    printed: set[str] = set()
    lines = [exploration.summary()]
    if diagram.hidden_hang_ups:
        lines.append("(the caller may hang up at every step: those paths end hung-up, not drawn)")
    lines.append("")

    def show(node: DiagramNode, indent: str) -> None:
        while True:
            tag = f"[{numbers[node.id]}] " if node.id in numbers else ""
            if node.id in printed:
                lines.append(f"{indent}↳ see [{numbers[node.id]}] {shorten(_line(node), 60)}")
                return
            printed.add(node.id)
            lines.append(f"{indent}{tag}{_line(node)}")
            out = diagram.out_of(node.id)
            if len(out) == 1 and not out[0].label:  # a plain "and then": same column
                node = diagram.node(out[0].target)
                continue
            for index, edge in enumerate(out):
                last = index == len(out) - 1
                lines.append(f"{indent}{'└─' if last else '├─'} {edge.label or 'listen'}")
                show(diagram.node(edge.target), indent + ("   " if last else "│  "))
            return

    show(diagram.nodes[0], "")
    if exploration.problems:
        lines.append("")
        lines.append("Problems:")
        lines.extend(f"  {problem}" for problem in exploration.problems)
    return "\n".join(lines)


# -- Mermaid -------------------------------------------------------------------------------

#: Characters that end a Mermaid string or that its HTML labels read as markup, as
#: look-alikes. (Mermaid's own "#quot;" codes are not decoded in every renderer.)
_MERMAID_ESCAPES = {'"': "'", "`": "'", "<": "\u2039", ">": "\u203a", "&": "\uff06", "\n": " "}
_PROBLEM = "stroke:#c0392b,stroke-width:2px"


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(c, c) for c in text)


def _mermaid_node(node: DiagramNode) -> str:
    text = _mermaid_text(shorten(node.label, 90))
    kind = node.point.kind
    if kind is PointKind.DIAL:
        return f'{node.id}(("{text}"))'
    if kind is PointKind.GATHER:
        return f'{node.id}{{{{"{text}"}}}}'
    if kind is PointKind.WAIT:
        return f'{node.id}[/"{text}"/]'
    if kind is PointKind.END:
        if node.marks:
            text += _mermaid_text(" ⚠ " + ", ".join(sorted(k.value for k in node.marks)))
        return f'{node.id}(["{text}"])'
    return f'{node.id}["{text}"]'


def render_mermaid(exploration: Exploration, *, hang_ups: bool = False) -> str:
    """The call flow as a Mermaid flowchart; problem paths in red."""
    diagram = build_diagram(exploration, hang_ups=hang_ups)
    lines = ["flowchart TD"]
    lines.extend(f"    {_mermaid_node(node)}" for node in diagram.nodes)
    red: list[str] = []
    for index, edge in enumerate(diagram.edges):
        arrow = "-.->" if edge.action is Action.HANG_UP else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.source} {arrow}{label} {edge.target}")
        if edge.on_problem_path:
            red.append(str(index))
    lines.append("    classDef ending fill:#eef5ee,stroke:#5b8c5b")
    lines.append(f"    classDef problem fill:#fde3e1,{_PROBLEM}")
    lines.append(f"    classDef trail {_PROBLEM}")
    classes = {
        "ending": [n.id for n in diagram.nodes if n.point.kind is PointKind.END and not n.problem],
        "problem": [n.id for n in diagram.nodes if n.marks],
        "trail": [n.id for n in diagram.nodes if n.on_problem_path and not n.marks],
    }
    for name, members in classes.items():
        if members:
            lines.append(f"    class {','.join(members)} {name}")
    if red:
        lines.append(f"    linkStyle {','.join(red)} {_PROBLEM}")
    return "\n".join(lines) + "\n"
