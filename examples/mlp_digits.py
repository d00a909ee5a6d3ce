"""Train a small neural network on handwritten digits with compiled graphad gradients.

Run it with ``python examples/mlp_digits.py`` (needs scikit-learn and
matplotlib: pip install ".[examples]"). The data are scikit-learn's bundled
8x8 digits (1,797 images, no download). The network is 64-128-10 with tanh
and a softmax cross-entropy loss; its gradient is compiled once, for a batch
of any size (the last mini-batch of an epoch is smaller: no recompile), and
trained with Adam. It prints the time per epoch, PyTorch's time on the same
model where PyTorch is installed, the test accuracy, and plots the loss.
"""

import argparse
import os
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphad as ga

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--quick", action="store_true", help="fewer epochs (CI)")
parser.add_argument("--out", default=".", help="folder for the loss plot")
args = parser.parse_args()
epochs = 12 if args.quick else args.epochs

# -- the data: pixels scaled to [0, 1], labels one-hot --------------------------------
digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(digits.data / 16.0, digits.target, test_size=0.25,
                                                    random_state=0, stratify=digits.target)
Y_train = np.eye(10)[y_train]

# -- the model: one graph, whatever the batch size ("n") --------------------------------
t0 = time.perf_counter()
X, Y = ga.symbols("X", shape=("n", 64)), ga.symbols("Y", shape=("n", 10))
W1, b1 = ga.symbols("W1", shape=(64, 128)), ga.symbols("b1", shape=(128,))
W2, b2 = ga.symbols("W2", shape=(128, 10)), ga.symbols("b2", shape=(10,))
params = [W1, b1, W2, b2]
logits = ga.tanh(X @ W1 + b1) @ W2 + b2
loss = ga.mean(ga.logsumexp(logits, axis=1) - ga.sum(Y * logits, axis=1))
train_step = ga.compile([loss, *ga.grad(loss, params)], [*params, X, Y])
predict = ga.compile(logits, [*params, X])
print(f"graph, gradient and compile: {time.perf_counter() - t0:.2f} s "
      f"({len(ga.to_networkx([loss, *ga.grad(loss, params)]))} nodes)")

# -- training: Adam on mini-batches of 64 --------------------------------------------------
rng = np.random.default_rng(0)
values = [rng.normal(0, 1 / np.sqrt(64), (64, 128)), np.zeros(128),
          rng.normal(0, 1 / np.sqrt(128), (128, 10)), np.zeros(10)]
m = [np.zeros_like(v) for v in values]
v2 = [np.zeros_like(v) for v in values]
lr, beta1, beta2, step, batch = 1e-2, 0.9, 0.999, 0, 64
losses, seconds = [], []
for _ in range(epochs):
    start, total = time.perf_counter(), 0.0
    order = rng.permutation(len(X_train))
    for k in range(0, len(order), batch):
        rows = order[k:k + batch]
        value, *grads = train_step(*values, X_train[rows], Y_train[rows])
        total += value * len(rows)
        step += 1
        for i, g in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v2[i] = beta2 * v2[i] + (1 - beta2) * g * g
            values[i] -= lr * (m[i] / (1 - beta1 ** step)) / (np.sqrt(v2[i] / (1 - beta2 ** step)) + 1e-8)
    seconds.append(time.perf_counter() - start)
    losses.append(total / len(X_train))

accuracy = float(np.mean(np.argmax(predict(*values, X_test), axis=1) == y_test))
print(f"{epochs} epochs: training loss {losses[0]:.3f} -> {losses[-1]:.4f}, "
      f"test accuracy {100 * accuracy:.1f}% ({len(X_test)} images)")
print(f"graphad: {1e3 * np.median(seconds):.1f} ms per epoch (median; gradient and Adam update, "
      f"{-(-len(X_train) // batch)} steps)")

try:  # the same model and loop in PyTorch, eager, for comparison
    import torch
except ImportError:
    print("PyTorch is not installed: no comparison")
else:
    torch.set_num_threads(1)
    tv = [torch.tensor(v, requires_grad=True) for v in values]
    Xt, Yt = torch.tensor(X_train), torch.tensor(Y_train)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        for k in range(0, len(X_train), batch):
            out = torch.tanh(Xt[k:k + batch] @ tv[0] + tv[1]) @ tv[2] + tv[3]
            value = (torch.logsumexp(out, 1) - (Yt[k:k + batch] * out).sum(1)).mean()
            grads = torch.autograd.grad(value, tv)
        times.append(time.perf_counter() - start)
    print(f"PyTorch eager (1 thread): {1e3 * np.median(times):.1f} ms per epoch (gradients only)")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot")
else:
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "mlp_digits_loss.png")
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(range(1, epochs + 1), losses, marker="o")
    ax.set(xlabel="epoch", ylabel="training loss", yscale="log", title="64-128-10 MLP on digits")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"loss curve: {path}")

assert accuracy >= 0.95, accuracy
