"""An exploration as one self-contained HTML page: the call flow drawn as inline SVG.

No script and nothing fetched: the layout is computed here. Layers by the longest
path from the call (so every edge points down), the order in each layer by the mean
position of the parents (a few sweeps), then each node as near above its children
and below its parents as the nodes beside it allow.
"""

from __future__ import annotations

import html
import itertools
import textwrap
from collections import defaultdict
from dataclasses import dataclass

from ._diagram import Diagram, DiagramEdge, DiagramNode, build_diagram
from ._paths import Action, Exploration, PointKind

__all__ = ["render_html"]

WIDTH = 210  # a node's box
GAP_X = 28  # between two boxes side by side
GAP_THIN = 8  # beside an edge's bend or label
GAP_Y = 14  # between a row of boxes and a row of labels
LINE = 15  # one line of text in a box
CHARS = 30  # characters per line in a box
MAX_LINES = 5
LABEL_HEIGHT = 18
CHAR_WIDTH = 6.3  # of an edge label's 11px text, near enough
MARGIN = 20
_SWEEPS = 6


@dataclass(eq=False, slots=True)
class _Item:
    """Something in a row: a node's box, an edge's label, or where an edge passes."""

    rank: int
    width: float
    node: DiagramNode | None = None
    lines: tuple[str, ...] = ()
    label: str = ""
    x: float = 0.0  # centre
    top: float = 0.0
    bottom: float = 0.0

    @property
    def height(self) -> float:
        if self.node is not None:
            return LINE * len(self.lines) + 14
        return LABEL_HEIGHT if self.label else 0.0


def _wrap(node: DiagramNode) -> tuple[str, ...]:
    text = node.label
    if node.point.kind is PointKind.GATHER and node.point.text:
        text = "? " + text
    lines = textwrap.wrap(text, CHARS) or [""]
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], lines[MAX_LINES - 1][: CHARS - 1] + "…"]
    if node.marks:
        lines.append("⚠ " + ", ".join(sorted(k.value for k in node.marks)))
    return tuple(lines)


def _layers(diagram: Diagram) -> dict[str, int]:
    """Longest path from the root, so that every edge goes down at least one layer."""
    parents: dict[str, int] = defaultdict(int)
    children: dict[str, list[str]] = defaultdict(list)
    for edge in diagram.edges:
        parents[edge.target] += 1
        children[edge.source].append(edge.target)
    layer = {n.id: 0 for n in diagram.nodes}
    ready = [n.id for n in diagram.nodes if parents[n.id] == 0]
    while ready:
        current = ready.pop()
        for child in children[current]:
            layer[child] = max(layer[child], layer[current] + 1)
            parents[child] -= 1
            if parents[child] == 0:
                ready.append(child)
    return layer


@dataclass(slots=True)
class _Layout:
    items: list[_Item]
    #: Each edge as the items it passes, from its source's box to its target's.
    routes: list[tuple[DiagramEdge, list[_Item]]]
    width: float
    height: float


def _layout(diagram: Diagram) -> _Layout:
    """Boxes on even rows, edge labels (and edges passing by) on the rows between."""
    layer = _layers(diagram)
    boxes = {n.id: _Item(2 * layer[n.id], WIDTH, n, _wrap(n)) for n in diagram.nodes}
    items = list(boxes.values())
    up: dict[int, list[_Item]] = defaultdict(list)
    down: dict[int, list[_Item]] = defaultdict(list)
    routes: list[tuple[DiagramEdge, list[_Item]]] = []
    for edge in diagram.edges:
        source, target = boxes[edge.source], boxes[edge.target]
        route = [source]
        for rank in range(source.rank + 1, target.rank):
            labelled = rank == source.rank + 1 and edge.label
            width = len(edge.label) * CHAR_WIDTH + 12 if labelled else 2.0
            passing = _Item(rank, width, label=edge.label if labelled else "")
            route.append(passing)
            items.append(passing)
        route.append(target)
        for upper, lower in itertools.pairwise(route):
            up[id(lower)].append(upper)
            down[id(upper)].append(lower)
        routes.append((edge, route))
    rows: dict[int, list[_Item]] = defaultdict(list)
    for item in items:
        rows[item.rank].append(item)
    depth = max(rows, default=0)
    for row in rows.values():
        _place(row, [0.0] * len(row))
    for sweep in range(_SWEEPS):  # order each row by where its neighbours stand
        downward = sweep % 2 == 0
        near = up if downward else down
        for rank in range(1, depth + 1) if downward else range(depth - 1, -1, -1):
            row = rows[rank]
            row.sort(key=lambda i: _mean([n.x for n in near[id(i)]], i.x))
            _place(row, [_mean([n.x for n in near[id(i)]], i.x) for i in row])
    left = min((i.x - i.width / 2 for i in items), default=0.0)
    right = max((i.x + i.width / 2 for i in items), default=0.0)
    top = float(MARGIN)
    for rank in range(depth + 1):
        row = rows.get(rank, [])
        height = max((i.height for i in row), default=0.0)
        for item in row:
            item.x += MARGIN - left
            item.top = top + (height - item.height) / 2 if item.node is None else top
            item.bottom = item.top + item.height
            if item.node is None and not item.label:  # an edge passing: the whole row
                item.top, item.bottom = top, top + height
        top += height + GAP_Y
    return _Layout(items, routes, right - left + 2 * MARGIN, top - GAP_Y + MARGIN)


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _gap(a: _Item, b: _Item) -> float:
    wide = a.node is not None and b.node is not None
    return (a.width + b.width) / 2 + (GAP_X if wide else GAP_THIN)


def _place(row: list[_Item], wanted: list[float]) -> None:
    """As near ``wanted`` as the order and the gaps allow: the mean of a push to the
    right and a push to the left, each of which keeps every gap, so the mean does too."""
    if not row:
        return
    rightward = list(wanted)
    for i in range(1, len(row)):
        rightward[i] = max(wanted[i], rightward[i - 1] + _gap(row[i - 1], row[i]))
    leftward = list(wanted)
    for i in range(len(row) - 2, -1, -1):
        leftward[i] = min(wanted[i], leftward[i + 1] - _gap(row[i], row[i + 1]))
    for i, item in enumerate(row):
        item.x = (rightward[i] + leftward[i]) / 2


def _route(points: list[_Item]) -> str:
    """A smooth line down through the items: vertical where it enters and leaves each."""
    first = points[0]
    path = [f"M{first.x:.1f},{first.bottom:.1f}"]
    previous_x, previous_y = first.x, first.bottom
    for item in points[1:]:
        end_y = item.top - 2 if item.node is not None else item.top
        bend = max(8.0, (end_y - previous_y) / 2)
        path.append(
            f"C{previous_x:.1f},{previous_y + bend:.1f} {item.x:.1f},{end_y - bend:.1f} "
            f"{item.x:.1f},{end_y:.1f}"
        )
        if item.node is None:
            path.append(f"L{item.x:.1f},{item.bottom:.1f}")
        previous_x, previous_y = item.x, item.bottom
    return " ".join(path)


def _svg(diagram: Diagram) -> str:
    layout = _layout(diagram)
    width, height = layout.width, layout.height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{html.escape("call flow of " + diagram.title)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="context-stroke"/></marker></defs>',
    ]
    labels: list[str] = []
    for edge, route in layout.routes:
        classes = ["edge"]
        if edge.action is Action.HANG_UP:
            classes.append("hang-up")
        if edge.on_problem_path:
            classes.append("problem")
        out.append(
            f'<path class="{" ".join(classes)}" d="{_route(route)}" marker-end="url(#arrow)"/>'
        )
        for item in route:
            if item.label:
                labels.append(
                    f'<g class="label{" problem" if edge.on_problem_path else ""}">'
                    f'<rect x="{item.x - item.width / 2:.1f}" y="{item.top:.1f}" '
                    f'width="{item.width:.1f}" height="{item.height:.1f}" rx="3"/>'
                    f'<text x="{item.x:.1f}" y="{item.top + 13:.1f}">'
                    f"{html.escape(item.label)}</text></g>"
                )
    for item in layout.items:
        node = item.node
        if node is None:
            continue
        classes = ["node", node.point.kind.value]
        if node.marks:
            classes.append("problem")
        elif node.on_problem_path:
            classes.append("trail")
        radius = 16 if node.point.kind in (PointKind.DIAL, PointKind.END) else 4
        left = item.x - item.width / 2
        out.append(f'<g class="{" ".join(classes)}"><title>{html.escape(node.label)}</title>')
        out.append(
            f'<rect x="{left:.1f}" y="{item.top:.1f}" width="{item.width:.0f}" '
            f'height="{item.height:.1f}" rx="{radius}"/>'
        )
        for index, line in enumerate(item.lines):
            y = item.top + 18 + index * LINE
            out.append(f'<text x="{item.x:.1f}" y="{y:.1f}">{html.escape(line)}</text>')
        out.append("</g>")
    out.extend(labels)  # on top of the edges
    out.append("</svg>")
    return "\n".join(out)


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.diagram { overflow: auto; border: 1px solid #ddd; border-radius: 6px; background: #fcfcfc; }
svg text { font: 12px system-ui, sans-serif; text-anchor: middle; fill: #222; }
.node rect { fill: #fff; stroke: #777; stroke-width: 1.2; }
.node.gather rect { fill: #e8f0fb; stroke: #4a76b8; }
.node.wait rect { fill: #f3ecfb; stroke: #7a55b0; }
.node.dial rect { fill: #333; stroke: #333; } .node.dial text { fill: #fff; font-weight: bold; }
.node.end rect { fill: #eef5ee; stroke: #5b8c5b; }
.node.trail rect { stroke: #c0392b; stroke-width: 2; }
.node.problem rect { fill: #fde3e1; stroke: #c0392b; stroke-width: 2.2; }
.edge { fill: none; stroke: #888; stroke-width: 1.3; }
.edge.hang-up { stroke-dasharray: 5 4; }
.edge.problem { stroke: #c0392b; stroke-width: 2.2; }
.label rect { fill: #fff; stroke: #bbb; } .label text { font-size: 11px; }
.label.problem rect { stroke: #c0392b; } .label.problem text { fill: #a5281b; }
table { border-collapse: collapse; } td, th { border-bottom: 1px solid #eee; padding: 3px 8px;
  text-align: left; vertical-align: top; }
.problems li { margin-bottom: .6em; } .kind { font-weight: bold; color: #a5281b; }
.muted { color: #666; }
"""


def render_html(
    exploration: Exploration, *, title: str | None = None, hang_ups: bool = False
) -> str:
    """A page with the call flow drawn, the problems and every path; no external files."""
    diagram = build_diagram(exploration, hang_ups=hang_ups)
    heading = html.escape(title or f"Every path of {exploration.flow}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{heading}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{heading}</h1>",
        f"<p>{html.escape(exploration.summary())}.</p>",
    ]
    legend = (
        "Blue boxes ask for keys; each arrow is labelled with the key or event that takes "
        "it; green ends say how the call ended. Red marks problems and the paths that show them."
    )
    if diagram.hidden_hang_ups:
        legend += (
            " The caller may hang up at every step; those paths end hung-up and are not drawn."
        )
    parts.append(f'<p class="muted">{html.escape(legend)}</p>')
    parts.append(f'<div class="diagram">{_svg(diagram)}</div>')
    parts.append("<h2>Problems</h2>")
    if exploration.problems:
        parts.append('<ol class="problems">')
        for problem in exploration.problems:
            count = f" ({problem.count} paths)" if problem.count > 1 else ""
            parts.append(
                f'<li><span class="kind">{html.escape(problem.kind.value)}</span>: '
                f"{html.escape(problem.message)}{html.escape(count)}<br>"
                f'<span class="muted">path: {html.escape(problem.path.describe())}</span></li>'
            )
        parts.append("</ol>")
    else:
        parts.append("<p>None found.</p>")
    parts.append(f"<h2>Paths</h2><details><summary>{len(exploration.paths)} paths</summary>")
    parts.append("<table><tr><th>#</th><th>the caller</th><th>heard</th><th>ending</th></tr>")
    for number, path in enumerate(exploration.paths, 1):
        moves = " → ".join(s.describe() for s in path.steps if s.choice.action is not Action.LISTEN)
        heard = "<br>".join(html.escape(text) for text in path.heard)
        parts.append(
            f"<tr><td>{number}</td><td>{html.escape(moves)}</td><td>{heard}</td>"
            f"<td>{html.escape(path.describe_ending())}</td></tr>"
        )
    parts.append("</table></details></body></html>")
    return "\n".join(parts) + "\n"
