"""A small real training step: logistic regression with numpy, run as a steplift job.

    python examples/train.py            # through the default operator (local without config)

The step streams its progress as logs and returns its metrics.
"""

from __future__ import annotations

import numpy as np

import steplift


@steplift.step(max_runtime=600)
def train(epochs: int, learning_rate: float = 0.5, seed: int = 0) -> dict[str, float]:
    """Fit a logistic-regression classifier on a synthetic, linearly separable-ish data set."""
    rng = np.random.default_rng(seed)
    true_weights = rng.normal(size=5)
    features = rng.normal(size=(2000, 5))
    labels = (features @ true_weights + rng.normal(scale=0.5, size=2000) > 0).astype(float)
    train_x, test_x = features[:1600], features[1600:]
    train_y, test_y = labels[:1600], labels[1600:]

    weights = np.zeros(5)
    bias = 0.0
    loss = float("nan")
    for epoch in range(1, epochs + 1):
        logits = train_x @ weights + bias
        predictions = 1.0 / (1.0 + np.exp(-logits))
        error = predictions - train_y
        weights -= learning_rate * train_x.T @ error / len(train_y)
        bias -= learning_rate * float(error.mean())
        eps = 1e-12
        loss = float(
            -np.mean(
                train_y * np.log(predictions + eps) + (1 - train_y) * np.log(1 - predictions + eps)
            )
        )
        print(f"epoch {epoch:3d}/{epochs}  loss {loss:.4f}", flush=True)

    test_predictions = (test_x @ weights + bias) > 0
    accuracy = float((test_predictions == test_y.astype(bool)).mean())
    return {"loss": round(loss, 4), "test_accuracy": round(accuracy, 4), "epochs": float(epochs)}


if __name__ == "__main__":
    metrics = train(20)
    print("metrics:", metrics)
