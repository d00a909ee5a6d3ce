"""Pictures of graphs: the evaluation sweeps, node for node, and the expression graphs.

``ga.picture(f, wrt, parts=("primal", "adjoint"), at={x: 2.0})`` draws what
the trace tables list: the primal variables v1, v2, ... with their values,
and the tangents v̇ᵢ (forward mode) or adjoints v̄ᵢ (reverse mode), each edge
one contribution labelled with its local factor; the adjoint sweep runs from
the output back to the inputs, and the gradients are labelled ∂f/∂x = ....
``view="expression"`` (the default without a point) draws the derivative
expressions themselves: the simplified tangent or adjoint graph that is
compiled. Both give DOT text and render SVG and PNG with Graphviz's ``dot``
where it is installed, else with ``graphviz-pure`` (a port of ``dot`` that
pip installs with graphad). Pictures display themselves in Jupyter.
"""

from __future__ import annotations

import os
import re
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
from .registry import OPS
from .reverse import vjp
from .shapes import fmt
from .trace import BAR, DOT, _bar, _dot, _ordered, trace

COLOURS = {"primal": "#cfe2f3", "tangent": "#d9ead3", "adjoint": "#f4cccc"}
_SYMBOLS = {"add": "+", "sub": "−", "mul": "×", "dmul": "×", "div": "÷", "neg": "−", "pow": "^",
            "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
_HEAD = ['digraph graphad {', '  rankdir=LR; graph [fontname="Helvetica"]; node [fontname="Helvetica", '
         'fontsize=11]; edge [fontname="Helvetica", fontsize=9, fontcolor="#555555"];']


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


def _esc(text) -> str:
    """Text inside a DOT string, on one line: a name is user text, so it cannot end the
    string; control characters become spaces, and what UTF-8 cannot hold a ``?``."""
    text = str(text).encode("utf-8", "replace").decode("utf-8")
    text = "".join(" " if ord(c) < 32 or c == "\x7f" else c for c in text)
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _lines(*lines) -> str:
    return "\\n".join(_esc(line) for line in lines if line)


class Picture:
    """A picture: ``.dot`` (Graphviz DOT text), ``.save(path)``, Jupyter display."""

    def __init__(self, dot: str):
        self.dot = dot

    def save(self, path: str) -> str:
        """Write the picture; the extension chooses the format (.dot, .svg, .png, .pdf with Graphviz)."""
        ext = os.path.splitext(path)[1].lower()
        if ext in (".dot", ".gv"):
            with open(path, "w") as f:
                f.write(self.dot)
            return path
        if ext not in (".svg", ".png", ".pdf"):
            raise ValueError(f"picture: cannot write {ext or 'a file without extension'}; "
                             "use .dot, .svg, .png or .pdf")
        program = dot_program()
        if program is None or (ext == ".pdf" and program != "dot"):  # graphviz-pure writes no PDF
            raise PictureError(f"to write {ext} files install Graphviz (the dot program)"
                               + ("" if ext == ".pdf" else " or graphviz-pure (pip install graphviz-pure; "
                                  "graphad's own installation brings it)") + "; .dot files need neither")
        done = subprocess.run([program, f"-T{ext[1:]}", "-o", path], input=self.dot.encode(),
                              capture_output=True, timeout=120)
        if done.returncode:
            raise PictureError(f"{os.path.basename(program)} could not draw the picture: "
                               f"{done.stderr.decode(errors='replace').strip()[-500:]}")
        return path

    def _repr_svg_(self) -> str | None:
        if dot_program() is None:
            return None  # Jupyter then shows the repr
        with tempfile.TemporaryDirectory() as d:
            with open(self.save(os.path.join(d, "picture.svg"))) as f:
                return f.read()


# --- the sweeps, node for node (the trace tables as pictures) ----------------------------

_KIND = {DOT: "tangent", BAR: "adjoint"}  # v̇ and v̄ are v plus a combining dot or bar


def _kind(name: str) -> str:
    return _KIND.get(name[1:2], "primal")


def _node_id(name: str) -> str:
    kind = _kind(name)
    return kind[0] + name[2 if kind != "primal" else 1:]  # v̄12 -> a12, v̇3 -> t3, v5 -> p5


def sweep_picture(traces, parts=("primal", "tangent", "adjoint"), absent=()) -> Picture:
    """Traces (from ``ga.trace``) drawn node for node: see :meth:`graphad.trace.Trace.picture`.
    ``absent``: the names of symbols differentiated by that the outputs do not read."""
    first = traces[0]
    inputs = first.inputs
    primal = [r for r in first.rows if r.get("sweep", "primal") == "primal"]
    outputs = [r["variable"].split()[0] for r in primal if r["variable"].endswith("(output)")]
    f = "f" if len(outputs) == 1 else "(" + " + ".join(outputs) + ")"
    nodes: dict[str, list] = {}  # node name -> label lines
    edges: list[tuple[str, str, str, str]] = []  # (from, to, local factor, term)
    for r in primal:
        v = r["variable"].split()[0]
        nodes[v] = [f"{v} = {r['operation']}", format_value(r["value"])]
    for t in traces:
        edges += [e for e in t.edges if _kind(e[1]) in parts and (_kind(e[1]) != "primal" or e not in edges)]
        if t.mode == "forward" and "tangent" in parts:
            seeds = {v: r["tangent"] for r in t.rows if (v := r["variable"].split()[0]) in inputs}
            unit = [v for v, s in seeds.items() if format_value(s) != "0"]
            for r in t.rows:
                v = r["variable"].split()[0]
                d = _dot(v)
                nodes[d] = [f"{d} = seed" if v in inputs else r.get("local derivative", f"{d} = 0"),
                            format_value(r["tangent"])]
                if v in outputs:
                    name = v if len(outputs) > 1 else "f"
                    one = len(unit) == 1 and format_value(seeds[unit[0]]) == "1"
                    what = f"∂{name}/∂{inputs[unit[0]]}" if one else f"tangent of {name}"
                    nodes[d][1] = f"{what} = {nodes[d][1]}"
        if t.mode == "reverse" and "adjoint" in parts:
            terms: dict[str, list] = {}  # v̄: its seed (an output's weight), then each contribution
            value: dict[str, str] = {}
            weights = []
            for r in t.rows:
                if r.get("sweep") != "adjoint":
                    continue
                v = r["variable"]
                if "local derivative" not in r:  # an output's seed (its weight), not a contribution
                    weights.append(format_value(r["adjoint"]))
                    terms[v] = [r["operation"].split(" = ", 1)[1]]
                value[v] = format_value(r["adjoint"])
            for e in t.edges:
                if _kind(e[1]) == "adjoint":
                    terms.setdefault(e[1], []).append(e[3])
            grad = f if weights == ["1"] * len(weights) else "(weighted outputs)"
            names = {_bar(v): name for v, name in inputs.items()}
            for v, parts_ in terms.items():
                seed_only = len(parts_) == 1 and v not in {e[1] for e in t.edges}
                last = (f"∂{grad}/∂{names[v]} = {value[v]}" if v in names
                        else "(seed)" if seed_only else value[v])
                nodes[v] = [f"{v} = " + " + ".join(parts_), last]
            for k, name in enumerate(absent):  # the outputs do not read it: a zero gradient
                nodes[f"v\u0304_absent{k}"] = [f"∂{grad}/∂{name} = 0", "(f does not read it)"]
    nodes = {n: label for n, label in nodes.items() if _kind(n) in parts}
    lines = list(_HEAD)
    titles = {"primal": "primal sweep: the variables and their values",
              "tangent": "tangent sweep (forward mode): v̇ = Σ ∂v/∂u · u̇, from the inputs",
              "adjoint": "adjoint sweep (reverse mode): ū = Σ v̄ · ∂v/∂u, from the output back to the inputs"}
    for kind in ("adjoint", "tangent", "primal"):  # dot stacks them bottom up: primal on top
        names = [n for n in nodes if _kind(n) == kind]
        if kind not in parts or not names:
            continue
        lines.append(f'  subgraph cluster_{kind} {{ label="{_esc(titles[kind])}"; style=rounded; '
                     'color="#999999";')
        for n in names:
            plain = "v" + re.sub(r"\D", "", n)  # v̄12 -> v12
            box = plain in inputs or "absent" in n
            marked = (plain in outputs) if kind != "adjoint" else box
            lines.append(f'    {_node_id(n)} [label="{_lines(*nodes[n])}", '
                         f'shape={"box" if box else "ellipse"}, style=filled, fillcolor="{COLOURS[kind]}"'
                         f'{", peripheries=2" if marked else ""}];')
        lines.append("  }")
    for a, b, factor, term in edges:
        if a not in nodes or b not in nodes:
            continue
        attrs = []
        if _kind(b) == "primal":
            label = factor  # the argument's position, where order matters
        elif factor:
            label = "" if factor == "1" else "× " + factor
        else:  # an array op: its reverse rule on the edge; its forward rule is on the node (dashed)
            label = term
            if not term:
                attrs.append("style=dashed")
        if label:
            attrs.append(f'label="{_esc(label)}"')
        if _kind(b) == "adjoint":  # drawn backwards: placed like the primal edge, pointing to the input side
            a, b = b, a
            attrs += ["dir=back", 'color="#cc0000"']
        lines.append(f"  {_node_id(a)} -> {_node_id(b)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    if "adjoint" in parts and "primal" in parts:
        for v in outputs:
            b = _bar(v)
            if b in nodes:
                lines.append(f'  {_node_id(v)} -> {_node_id(b)} [style=dashed, constraint=false];')
    lines.append("}")
    return Picture("\n".join(lines) + "\n")


# --- the expression graphs -----------------------------------------------------------------

@dataclass
class _Panel:
    title: str
    graph: Graph
    nodes: list[int]  # shown, in topological order
    kind: dict[int, str]  # node -> primal / tangent / adjoint
    outputs: dict[int, list[str]]  # output node -> what it is (f, ∂f/∂x, ...)
    values: dict[int, float]
    hidden: int  # nodes left out


def _panels_dot(panels: list[_Panel]) -> str:
    lines = list(_HEAD)
    for p_index, panel in enumerate(panels):
        indent = "  "
        if len(panels) > 1:
            lines.append(f'  subgraph cluster_{p_index} {{ label="{_esc(panel.title)}";')
            indent = "    "
        elif panel.title:
            lines.append(f'  label="{_esc(panel.title)}"; labelloc=t;')
        g = panel.graph
        for v in panel.nodes:
            label, shape = _label(panel, v)
            extra = ", peripheries=2" if v in panel.outputs else ""
            lines.append(f'{indent}n{p_index}_{v} [label="{label}", shape={shape}, style=filled, '
                         f'fillcolor="{COLOURS[panel.kind[v]]}"{extra}];')
        shown = set(panel.nodes)
        for v in panel.nodes:
            ordered = _ordered(g, v)
            for i, a in enumerate(g.args[v]):
                if a in shown and (ordered or a not in g.args[v][:i]):  # the position, where order matters
                    lines.append(f"{indent}n{p_index}_{a} -> n{p_index}_{v}"
                                 + (f' [label="{i + 1}"]' if ordered else "") + ";")
        if panel.hidden:
            lines.append(f'{indent}n{p_index}_more [label="... {panel.hidden} more nodes not shown", '
                         "shape=note];")
        if len(panels) > 1:
            lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _label(panel: _Panel, v: int) -> tuple[str, str]:
    g = panel.graph
    op = g.ops[v]
    if op == "symbol":
        text, shape = g.payload[v], "box"
    elif op == "const":  # an output that is a number (other constants are folded into their users)
        text, shape = format_constant(g.payload[v]), "box"
    else:  # constants are folded into their users' labels: □**2
        args = g.args[v]
        consts = [format_constant(g.payload[a]) if g.ops[a] == "const" else "□" for a in args]
        text = _SYMBOLS.get(op, op)
        if "□" in consts and len(set(consts)) > 1:
            text = OPS[op].fmt.format(*consts)
        shape = "ellipse"
    lines = [text]
    if g.shapes[v]:  # an array node shows its shape
        lines.append(fmt(g.shapes[v]))
    if v in panel.values and op != "const":
        lines.append(format_value(panel.values[v]))
    lines += [f"{what} = {format_value(panel.values[v])}" if v in panel.values else what
              for what in panel.outputs.get(v, ())]
    return _lines(*lines), shape


def _panel(title, graph, roots, kind_of, at, max_nodes) -> _Panel:
    """``roots``: {output node: what it is}."""
    order = [v for v in graph.ancestors(roots) if graph.ops[v] != "const" or v in roots]
    hidden = 0
    if len(order) > max_nodes:  # keep the nodes nearest the (first max_nodes) outputs
        first = list(roots)[:max_nodes]
        keep, frontier = set(first), list(first)
        while frontier and len(keep) < max_nodes:
            nxt = []
            for v in frontier:
                for a in graph.args[v]:
                    if a not in keep and graph.ops[a] != "const" and len(keep) < max_nodes:
                        keep.add(a)
                        nxt.append(a)
            frontier = nxt
        hidden = len(order) - len(keep)
        order = sorted(keep)
        roots = {v: roots[v] for v in first}
    values = {}
    if at is not None:
        raw = node_values(graph, list(roots), at)
        values = {v: raw[v] for v in order if v in raw}
    return _Panel(title, graph, order, {v: kind_of(v) for v in order}, roots, values, hidden)


def picture(outputs, wrt=None, *, parts=("primal",), at: dict | None = None, seed=None,
            view: str | None = None, max_nodes: int = 150) -> Picture:
    """A picture of the computation of ``outputs`` and, with ``parts``
    containing ``"tangent"`` or ``"adjoint"``, of its forward mode (along
    ``seed``: a dict {symbol: tangent} as :func:`graphad.trace` takes, or a
    list with one tangent per symbol of ``wrt``; default all ones) or reverse
    mode (each output weighs 1) with respect to ``wrt``.

    ``view="sweep"`` (the default when a point ``at`` is given) draws the
    trace tables node for node: the variables v1, v2, ... and the tangents v̇ᵢ
    or adjoints v̄ᵢ with their values, each edge one contribution labelled
    with its local factor; the adjoint edges point from the output back to
    the inputs. ``view="expression"`` (the default without a point) draws the
    derivative expressions as graphad builds and compiles them.

    Primal, tangent and adjoint nodes get distinct colours, inputs are boxes,
    outputs have a double border and say what they are (∂f/∂x = 218.4), and
    an op whose argument order matters numbers its incoming edges. Graphs
    larger than ``max_nodes`` are drawn as expressions, cut to the nodes
    nearest the outputs, and say how many were left out.

    Examples:
        >>> import graphad as ga
        >>> x = ga.symbols("x")
        >>> pic = ga.picture(ga.exp(x**2), [x], parts=("primal", "adjoint"), at={x: 2.0})
        >>> "∂f/∂x = 218.4" in pic.dot, "#f4cccc" in pic.dot
        (True, True)
    """
    if isinstance(wrt, dict):
        raise TypeError("picture: give the point as at={symbol: value}; the argument after the outputs is "
                        "wrt, the symbols to differentiate by, as in ga.trace")
    outs, _ = as_expr_list(outputs, "picture")
    unknown = set(parts) - set(COLOURS)
    if unknown or not parts:
        raise ValueError(f"picture: parts must be some of {', '.join(COLOURS)}, not {sorted(unknown)}")
    if view not in (None, "sweep", "expression"):
        raise ValueError(f"picture: view must be 'sweep' or 'expression', not {view!r}")
    if view == "sweep" and at is None:
        raise ValueError("picture: the sweep view shows values: give the point as at={symbol: value}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"picture: max_nodes must be a whole number of at least 1, not {max_nodes!r}")
    graph = outs[0].graph
    syms = []
    if "tangent" in parts or "adjoint" in parts:
        if wrt is None:
            raise ValueError("picture: tangent and adjoint graphs need wrt, the symbols to differentiate by")
        syms, _ = as_symbol_list(wrt, "picture", graph)
    seeds = _seeds(seed, syms)
    primal = set(graph.ancestors(e.id for e in outs))
    sweep = (view or ("sweep" if at is not None else "expression")) == "sweep"
    if sweep and len(primal) <= max_nodes and not any(e.is_constant for e in outs):
        tangents, weights = {}, {}  # a symbol given twice moves twice as fast; an output given twice weighs 2
        for s, t in zip(syms, seeds):
            tangents[s.id] = (s, tangents[s.id][1] + t if s.id in tangents else t)
        for e in outs:
            weights[e.id] = (e, weights[e.id][1] + 1.0 if e.id in weights else 1.0)
        traces = [trace(outs, syms, at=at, mode="forward", seed=dict(tangents.values()))]
        if "adjoint" in parts:
            traces.append(trace(outs, syms, at=at, mode="reverse", seed=dict(weights.values())))
        absent = [s.name for s in syms if s.id not in primal] if "adjoint" in parts else []
        return sweep_picture(traces, parts, absent)
    f = ["f"] if len(outs) == 1 else [f"f{i + 1}" for i in range(len(outs))]
    roots: dict[int, list[str]] = {}
    if "primal" in parts:
        for e, name in zip(outs, f):
            roots.setdefault(e.id, []).append(name)
    if "tangent" in parts:
        for e, name in zip(jvp(outs, syms, seeds), f):
            roots.setdefault(e.id, []).append(f"∂{name}/∂{syms[0]}" if len(syms) == 1 and seed is None
                                              else f"tangent of {name}")
    tangent = set(graph.ancestors(roots)) - primal
    if "adjoint" in parts:
        whole = f[0] if len(f) == 1 else "(" + " + ".join(f) + ")"
        for e, s in zip(vjp(outs, syms, [1.0] * len(outs)), syms):
            roots.setdefault(e.id, []).append(f"∂{whole}/∂{s}")
    roots = {v: list(dict.fromkeys(what)) for v, what in roots.items()}  # ∂f/∂x once, not twice

    def kind_of(v):
        return "primal" if v in primal else "tangent" if v in tangent else "adjoint"

    names = {"primal": "primal (blue)", "tangent": "tangent (green)", "adjoint": "adjoint (red)"}
    title = " + ".join(names[p] for p in ("primal", "tangent", "adjoint") if p in parts) + " expressions"
    title += "; boxes: inputs, double borders: outputs"
    return Picture(_panels_dot([_panel(title, graph, roots, kind_of, at, max_nodes)]))


def _seeds(seed, syms) -> list:
    """The tangents of ``syms``: 1 each by default; a list, one per symbol; or a dict
    {symbol: tangent} as ``ga.trace`` takes (0 for a symbol it leaves out)."""
    if seed is None:
        return [1.0] * len(syms)
    if isinstance(seed, dict):
        ids = {s.id for s in syms}
        given = {}
        for k, t in seed.items():
            if not (hasattr(k, "is_symbol") and k.is_symbol and k.id in ids):
                raise ValueError(f"picture: the seed key {k!r} is not one of wrt's symbols")
            given[k.id] = t
        return [given.get(s.id, 0.0) for s in syms]
    if not isinstance(seed, (list, tuple)) or len(seed) != len(syms):
        raise ValueError(f"picture: seed gives the tangents of wrt: a list of {len(syms)} value(s), or a "
                         f"dict {{symbol: tangent}}, not {seed!r}")
    return list(seed)


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
        panels.append(_panel(f"{title}: {len(prog)} nodes", g, {e.id: [] for e in exprs},
                             lambda v: "primal", None, max_nodes))
    return Picture(_panels_dot(panels))
