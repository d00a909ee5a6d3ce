"""Pictures of graphs: the computation graph, its tangent and adjoint graphs, and the passes.

``ga.picture(f, wrt, parts=("primal", "adjoint"), at={x: 2.0})`` draws the
DAG with primal, tangent and adjoint nodes in distinct colours, inputs and
outputs marked, and values on the nodes when a point is given. It always
gives DOT text; it renders SVG and PNG with Graphviz's ``dot`` when that is
installed, else with ``graphviz-pure`` (a port of ``dot`` that pip installs
with graphad), else with matplotlib (through networkx). Pictures
display themselves in Jupyter. Graphs larger than ``max_nodes`` are cut to the
nodes nearest the outputs, and the picture says how many were left out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass

from .evaluate import node_values
from .expr import as_expr_list, as_symbol_list, format_constant, format_value
from .forward import jvp
from .graph import Graph
from .reverse import vjp
from .shapes import fmt

COLOURS = {"primal": "#cfe2f3", "tangent": "#d9ead3", "adjoint": "#f4cccc"}
_SYMBOLS = {"add": "+", "sub": "−", "mul": "×", "dmul": "×", "div": "÷", "neg": "−", "pow": "^",
            "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}


class PictureError(RuntimeError):
    """No way to render a picture in the requested format."""


def dot_program() -> str | None:
    """Graphviz's ``dot`` where it is installed, else ``graphviz-pure``, a port of
    it that pip installs with graphad (no system package needed; it writes SVG
    and PNG, not PDF)."""
    if shutil.which("dot"):
        return "dot"
    name = "graphviz-pure" + (".exe" if os.name == "nt" else "")
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return shutil.which("graphviz-pure")


def renderer() -> str | None:
    """How SVG and PNG are drawn here: "dot" (Graphviz or graphviz-pure), "matplotlib", or None."""
    if dot_program():
        return "dot"
    return "matplotlib" if _has_matplotlib() else None


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class _Panel:
    title: str
    graph: Graph
    nodes: list[int]  # shown, in topological order
    kind: dict[int, str]  # node -> primal / tangent / adjoint
    outputs: list[int]
    values: dict[int, float]
    hidden: int  # nodes left out


class Picture:
    """A picture of one or more graphs: ``.dot``, ``.save(path)``, Jupyter display."""

    def __init__(self, panels: list[_Panel]):
        self.panels = panels

    @property
    def dot(self) -> str:
        """Graphviz DOT text (always available)."""
        lines = ["digraph graphad {", '  rankdir=BT; node [fontname="Helvetica", fontsize=11];']
        for p_index, panel in enumerate(self.panels):
            indent = "  "
            if len(self.panels) > 1:
                lines.append(f'  subgraph cluster_{p_index} {{ label="{panel.title}";')
                indent = "    "
            elif panel.title:
                lines.append(f'  label="{panel.title}"; labelloc=t;')
            for v in panel.nodes:
                label, shape = _label(panel, v)
                extra = ", peripheries=2" if v in panel.outputs else ""
                lines.append(f'{indent}n{p_index}_{v} [label="{label}", shape={shape}, style=filled, '
                             f'fillcolor="{COLOURS[panel.kind[v]]}"{extra}];')
            shown = set(panel.nodes)
            for v in panel.nodes:
                for a in dict.fromkeys(panel.graph.args[v]):
                    if a in shown:
                        lines.append(f"{indent}n{p_index}_{a} -> n{p_index}_{v};")
            if panel.hidden:
                lines.append(f'{indent}n{p_index}_more [label="... {panel.hidden} more nodes not shown", '
                             "shape=note];")
            if len(self.panels) > 1:
                lines.append("  }")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def save(self, path: str) -> str:
        """Write the picture; the extension chooses the format (.dot, .svg, .png)."""
        ext = os.path.splitext(path)[1].lower()
        if ext in (".dot", ".gv"):
            with open(path, "w") as f:
                f.write(self.dot)
        elif ext in (".svg", ".png", ".pdf"):
            program = dot_program()
            if program and (ext != ".pdf" or program == "dot"):  # graphviz-pure writes no PDF
                subprocess.run([program, f"-T{ext[1:]}", "-o", path], input=self.dot.encode(), check=True,
                               capture_output=True, timeout=120)
            elif _has_matplotlib():
                self._matplotlib(path)
            else:
                raise PictureError(f"to write {ext} files install Graphviz (the dot program) or matplotlib "
                                   "(pip install 'graphad[examples]'); .dot files need neither")
        else:
            raise ValueError(f"picture: cannot write {ext or 'a file without extension'}; "
                             "use .dot, .svg, .png or .pdf")
        return path

    def _repr_svg_(self) -> str | None:
        if renderer() is None:
            return None  # Jupyter then shows the repr
        with tempfile.TemporaryDirectory() as d:
            path = self.save(os.path.join(d, "picture.svg"))
            with open(path) as f:
                return f.read()

    def _matplotlib(self, path: str) -> None:
        import networkx as nx
        from matplotlib.figure import Figure  # no pyplot: leaves the user's backend alone

        fig = Figure(figsize=(6 * len(self.panels), 6))
        axes = fig.subplots(1, len(self.panels), squeeze=False)
        for ax, panel in zip(axes[0], self.panels):
            G = nx.DiGraph()
            shown = set(panel.nodes)
            depth: dict[int, int] = {}
            for v in panel.nodes:  # layers: longest path from a leaf
                depth[v] = 1 + max((depth[a] for a in panel.graph.args[v] if a in shown), default=-1)
                G.add_node(v, layer=depth[v])
            G.add_edges_from((a, v) for v in panel.nodes for a in panel.graph.args[v] if a in shown)
            pos = nx.multipartite_layout(G, subset_key="layer", align="horizontal")
            colours = [COLOURS[panel.kind[v]] for v in G]
            nx.draw_networkx_edges(G, pos, ax=ax, arrows=True, arrowsize=10, edge_color="#888888")
            nx.draw_networkx_nodes(G, pos, ax=ax, node_color=colours, node_size=900,
                                   edgecolors=["black" if v in panel.outputs else "#666666" for v in G],
                                   linewidths=[2.5 if v in panel.outputs else 0.8 for v in G])
            nx.draw_networkx_labels(G, pos, ax=ax, font_size=7,
                                    labels={v: _label(panel, v)[0].replace("\\n", "\n") for v in G})
            title = panel.title + (f"\n({panel.hidden} more nodes not shown)" if panel.hidden else "")
            ax.set_title(title, fontsize=10)
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(path)


def _label(panel: _Panel, v: int) -> tuple[str, str]:
    g = panel.graph
    op = g.ops[v]
    if op == "symbol":  # a name is user text: escaped, so it cannot end the DOT string
        text, shape = g.payload[v].replace("\\", "\\\\").replace("\n", " ").replace("\r", " "), "box"
    elif op == "const":
        text, shape = format_constant(g.payload[v]), "plaintext"
    else:
        text, shape = _SYMBOLS.get(op, op), "ellipse"
    if g.shapes[v] and op != "const":  # an array node shows its shape
        text += "\\n" + fmt(g.shapes[v])
    if v in panel.values and op != "const":
        text += "\\n" + format_value(panel.values[v])
    return text.replace('"', "'"), shape


def _panel(title, graph, roots, kind_of, at, max_nodes) -> _Panel:
    order = graph.ancestors(roots)
    hidden = 0
    if len(order) > max_nodes:  # keep the nodes nearest the (first max_nodes) outputs
        roots = roots[:max_nodes]
        keep, frontier = set(roots), list(roots)
        while frontier and len(keep) < max_nodes:
            nxt = []
            for v in frontier:
                for a in graph.args[v]:
                    if a not in keep and len(keep) < max_nodes:
                        keep.add(a)
                        nxt.append(a)
            frontier = nxt
        hidden = len(order) - len(keep)
        order = sorted(keep)
    values = {}
    if at is not None:
        raw = node_values(graph, list(roots), at)
        values = {v: raw[v] for v in order if v in raw}
    return _Panel(title, graph, order, {v: kind_of(v) for v in order}, list(roots), values, hidden)


def picture(outputs, wrt=None, *, parts=("primal",), at: dict | None = None, seed=None,
            max_nodes: int = 150) -> Picture:
    """A picture of the computation graph of ``outputs`` and, with ``parts``
    containing ``"tangent"`` or ``"adjoint"``, of its tangent graph (forward
    mode along ``seed``, default all ones) or adjoint graph (reverse mode,
    output weights 1) with respect to ``wrt``.

    Primal, tangent and adjoint nodes get distinct colours, inputs are boxes,
    outputs have a double border, and with ``at`` every node shows its value.

    Examples:
        >>> import graphad as ga
        >>> x = ga.symbols("x")
        >>> pic = ga.picture(ga.exp(x**2), [x], parts=("primal", "adjoint"), at={x: 2.0})
        >>> pic.dot.count("->") > 3, "#f4cccc" in pic.dot
        (True, True)
    """
    if isinstance(wrt, dict):
        raise TypeError("picture: give the point as at={symbol: value}; the argument after the outputs is "
                        "wrt, the symbols to differentiate by, as in ga.trace")
    outs, _ = as_expr_list(outputs, "picture")
    unknown = set(parts) - set(COLOURS)
    if unknown or not parts:
        raise ValueError(f"picture: parts must be some of {', '.join(COLOURS)}, not {sorted(unknown)}")
    graph = outs[0].graph
    roots: list[int] = []
    primal = set(graph.ancestors(e.id for e in outs))
    tangent_roots, adjoint_roots = [], []
    if ("tangent" in parts or "adjoint" in parts) and wrt is None:
        raise ValueError("picture: tangent and adjoint graphs need wrt, the symbols to differentiate by")
    if "tangent" in parts:
        syms, _ = as_symbol_list(wrt, "picture", outs[0].graph)
        tangent_roots = [e.id for e in jvp(outs, syms, seed if seed is not None else [1.0] * len(syms))]
    if "adjoint" in parts:
        syms, _ = as_symbol_list(wrt, "picture", outs[0].graph)
        adjoint_roots = [e.id for e in vjp(outs, syms, [1.0] * len(outs))]
    if "primal" in parts:
        roots += [e.id for e in outs]
    roots += tangent_roots + adjoint_roots
    tangent = set(graph.ancestors(tangent_roots)) - primal if tangent_roots else set()

    def kind_of(v):
        return "primal" if v in primal else "tangent" if v in tangent else "adjoint"

    names = {"primal": "primal (blue)", "tangent": "tangent (green)", "adjoint": "adjoint (red)"}
    title = " + ".join(names[p] for p in ("primal", "tangent", "adjoint") if p in parts) + " graph"
    title += "; boxes: inputs, double borders: outputs"
    return Picture([_panel(title, graph, list(dict.fromkeys(roots)), kind_of, at, max_nodes)])


def picture_passes(outputs, inputs, *, max_nodes: int = 150) -> Picture:
    """The graph before and after the compiler's passes, side by side."""
    from .passes import optimise
    from .program import from_exprs

    outs, _ = as_expr_list(outputs, "picture_passes")
    syms, _ = as_symbol_list(inputs, "picture_passes", outs[0].graph)
    program = from_exprs(outs, syms)
    optimised, report = optimise(program)
    panels = []
    for title, prog in (("before the passes", program), ("after the passes", optimised)):
        g = Graph()
        exprs = prog.to_exprs(g)
        panels.append(_panel(f"{title}: {len(prog)} nodes", g, [e.id for e in exprs],
                             lambda v: "primal", None, max_nodes))
    return Picture(panels)

