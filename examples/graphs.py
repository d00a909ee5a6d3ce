"""Pictures of computation, tangent and adjoint graphs, and of the compiler's passes.

Run it with ``python examples/graphs.py [--out DIR]`` (default ./graphs_out; the
pictures in docs/img were made with --out docs/img). It uses
Graphviz's dot when installed, else graphviz-pure (installed with graphad).
"""

import argparse
import os

import graphad as ga

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="graphs_out", help="folder for the pictures")
out = parser.parse_args().out
os.makedirs(out, exist_ok=True)

x, y = ga.symbols("x y")
seed = ga.exp(x**2)
f = ga.exp(x**2) * ga.sin(y)
pictures = {
    "seed_computation": ga.picture(seed, [x], at={x: 2.0}),
    "seed_tangent": ga.picture(seed, [x], parts=("primal", "tangent"), at={x: 2.0}),
    "seed_adjoint": ga.picture(seed, [x], parts=("primal", "adjoint"), at={x: 2.0}),
    "seed_adjoint_expression": ga.picture(seed, [x], parts=("primal", "adjoint"), view="expression"),
    "f_all": ga.picture(f, [x, y], parts=("primal", "tangent", "adjoint"), at={x: 0.5, y: 1.0}),
    "f_passes": ga.picture_passes([f, *ga.grad(f, [x, y])], [x, y]),
}
with ga.Graph():  # an MLP with array nodes: 17 nodes for any batch and layer sizes (docs/arrays.md)
    X, Y = ga.symbols("X", shape=("n", 64)), ga.symbols("Y", shape=("n", 1))
    W1, b1 = ga.symbols("W1", shape=(64, 32)), ga.symbols("b1", shape=(32,))
    W2, b2 = ga.symbols("W2", shape=(32, 1)), ga.symbols("b2", shape=(1,))
    pictures["mlp"] = ga.picture(ga.mean((ga.tanh(X @ W1 + b1) @ W2 + b2 - Y) ** 2))
for name, pic in pictures.items():
    print("wrote", pic.save(os.path.join(out, f"{name}.dot")))
    try:
        print("wrote", pic.save(os.path.join(out, f"{name}.svg")))
    except ga.pictures.PictureError as e:
        print("no SVG:", e)
