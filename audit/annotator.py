"""Stage ``annotator``: train the classifier that labels GAN samples, calibrate and test it.

    python -m audit.annotator --data results/digits/data --out results/digits/annotator \
        --arch auto --epochs 60 --seed 0 --threads 2

Trained on the real ``train`` split; early stopping and temperature scaling on ``val``;
every figure below measured on the untouched ``test`` split. Outputs in ``--out``:

``model.pt``            weights, architecture, class names and the fitted temperature
``metrics.json``        test accuracy, per-class accuracy, confusion matrix, ECE before/after
                        calibration, temperature, training history
``test_predictions.csv`` one row per test image: row, label, predicted, confidence, p_<k>;
                        the skew stage measures the annotator's error rates from it
``confusion.png``       the row-normalised confusion matrix
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from audit.data.store import PreparedDataset
from audit.io import AuditInputError, run_cli, save_json, save_table
from audit.runtime import configure_torch, resolve_device


def prediction_table(rows: np.ndarray, labels: np.ndarray | None, probabilities: np.ndarray) -> pd.DataFrame:
    """One row per image: row, [label], predicted, confidence, p_0 .. p_{K-1}."""
    table = pd.DataFrame({"row": rows})
    if labels is not None:
        table["label"] = labels
    table["predicted"] = probabilities.argmax(axis=1)
    table["confidence"] = probabilities.max(axis=1)
    for k in range(probabilities.shape[1]):
        table[f"p_{k}"] = probabilities[:, k]
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audit.annotator", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="prepared dataset directory")
    parser.add_argument("--out", required=True)
    parser.add_argument("--arch", default="auto")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--patience", type=int, default=15)
    parser.add_argument("--flip", action="store_true", help="random horizontal flips (not for digits)")
    parser.add_argument("--shift", type=int, default=1, help="random shifts of up to this many pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        raise AuditInputError(f"annotator.epochs: must be >= 1, got {args.epochs}")

    configure_torch(args.threads, args.seed)
    from audit.models.classifier import (build_classifier, calibrated_probabilities, choose_architecture,
                                         expected_calibration_error, fit_temperature, predict_logits,
                                         save_classifier, train_classifier)
    from audit.metrics.skew import confusion_matrix

    device = resolve_device(args.device)
    data = PreparedDataset.open(args.data)
    arch = choose_architecture(args.arch, data.images.shape[1:])
    train_x, train_y = data.subset("train")
    val_x, val_y = data.subset("val")
    model = build_classifier(arch, data.images.shape[1:], data.n_classes)
    result = train_classifier(model, train_x, train_y, val_x, val_y, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, flip=args.flip, shift=args.shift, patience=args.patience,
                              seed=args.seed, device=device, progress=True)
    temperature = fit_temperature(predict_logits(result.model, val_x, device=device), val_y)

    test_rows = data.rows("test")
    test_x, test_y = data.subset("test")
    raw = calibrated_probabilities(result.model, 1.0, test_x, device)
    calibrated = calibrated_probabilities(result.model, temperature, test_x, device)
    predicted = calibrated.argmax(axis=1)
    per_class = {data.class_names[k]: float((predicted[test_y == k] == k).mean()) for k in range(data.n_classes)
                 if (test_y == k).any()}
    confusion = confusion_matrix(test_y, predicted, data.n_classes)
    metrics = {
        "architecture": arch,
        "parameters": int(sum(p.numel() for p in result.model.parameters())),
        "device": device,
        "n_train": int(train_y.shape[0]), "n_val": int(val_y.shape[0]), "n_test": int(test_y.shape[0]),
        "test_accuracy": float((predicted == test_y).mean()),
        "val_accuracy": result.history[result.best_epoch].get("val_accuracy"),
        "per_class_accuracy": per_class,
        "temperature": temperature,
        "ece_before_calibration": expected_calibration_error(raw, test_y),
        "ece_after_calibration": expected_calibration_error(calibrated, test_y),
        "confusion_pred_given_true": confusion.tolist(),
        "best_epoch": result.best_epoch,
        "history": result.history,
        "class_names": list(data.class_names),
    }
    out = Path(args.out)
    save_classifier(out / "model.pt", result.model, arch, data.images.shape[1:], data.class_names, temperature)
    save_table(out / "test_predictions.csv", prediction_table(test_rows, test_y, calibrated))
    from audit.plots import plot_confusion

    plot_confusion(confusion, data.class_names, out / "confusion.png",
                   title=f"annotator on real test images: accuracy {metrics['test_accuracy']:.3f}")
    save_json(out / "metrics.json", metrics)
    print(f"annotator {arch}: test accuracy {metrics['test_accuracy']:.4f}, T={temperature:.3f}, "
          f"ECE {metrics['ece_before_calibration']:.4f} -> {metrics['ece_after_calibration']:.4f}")


if __name__ == "__main__":
    run_cli(main)
