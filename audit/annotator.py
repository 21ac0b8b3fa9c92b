"""Stage ``annotator``: train the classifier that labels GAN samples, calibrate and test it.

    python -m audit.annotator --data results/digits/data --model results/digits/annotator/model.pt \
        --metrics results/digits/annotator/metrics.json \
        --test-predictions results/digits/annotator/test_predictions.csv \
        --confusion results/digits/annotator/confusion.png --arch auto --epochs 60 --batch-size 64 \
        --lr 0.002 --patience 15 --no-flip --shift 1 --seed 0 --threads 2 --device auto

Trained on the real ``train`` split; early stopping and temperature scaling on ``val``;
every figure below measured on the untouched ``test`` split. On Stacked MNIST (a composed
dataset) the classifier is a digit classifier trained on the base ``mnist`` splits and applied
to each channel (:mod:`audit.models.stacked`): the figures and test predictions are per digit,
and ``metrics["stacked"]`` compares the real test triples with the Kronecker confusion. Outputs:

``--model``             weights, architecture, class names and the fitted temperature
``--metrics``           JSON: test accuracy, per-class accuracy, confusion matrix, ECE
                        before/after calibration, temperature, training history
``--test-predictions``  one row per test image: row, label, predicted, confidence, p_<k>;
                        the skew stage measures the annotator's error rates from it
``--confusion``         PNG: the row-normalised confusion matrix
"""

from __future__ import annotations

import argparse

from audit.cli import add_outputs, run_cli, stage_parser
from audit.data.store import PreparedDataset
from audit.io import AuditInputError, save_json, save_table
from audit.runtime import configure_torch, resolve_device


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.annotator", __doc__)
    parser.add_argument("--data", required=True, help="prepared dataset directory")
    add_outputs(parser, model="the calibrated classifier (.pt)", metrics="test figures and history (.json)",
                test_predictions="one row per test image (.csv)", confusion="confusion matrix plot (.png)")
    parser.add_argument("--arch", required=True, help="auto | smallcnn | resnet18")
    parser.add_argument("--epochs", type=int, required=True, help="upper bound; early stopping on val")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True, help="peak learning rate (one-cycle AdamW)")
    parser.add_argument("--patience", type=int, required=True, help="epochs without a better val accuracy")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, required=True,
                        help="random horizontal flips (not for digits)")
    parser.add_argument("--shift", type=int, required=True, help="random shifts of up to this many pixels")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        raise AuditInputError(f"annotator.epochs: must be >= 1, got {args.epochs}")

    configure_torch(args.threads, args.seed)
    from audit.models.classifier import (build_classifier, calibrated_probabilities, choose_architecture,
                                         expected_calibration_error, fit_temperature, predict_logits,
                                         prediction_table, save_classifier, train_classifier)
    from audit.metrics.skew import confusion_matrix

    device = resolve_device(args.device)
    stacked = PreparedDataset.open(args.data)
    # Stacked MNIST: the digit classifier of every channel learns from the base digits
    data = stacked.base() if "stacked" in stacked.meta else stacked
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
    if data is not stacked:
        from audit.models.stacked import save_stacked_annotator, triple_check

        metrics["stacked"] = triple_check(result.model, temperature, stacked, confusion, device)
        save_stacked_annotator(args.model, result.model, arch, data.images.shape[1:], data.class_names, temperature)
    else:
        save_classifier(args.model, result.model, arch, data.images.shape[1:], data.class_names, temperature)
    save_table(args.test_predictions, prediction_table(test_rows, test_y, calibrated))
    from audit.plots import plot_confusion

    plot_confusion(confusion, data.class_names, args.confusion,
                   title=f"annotator on real test images: accuracy {metrics['test_accuracy']:.3f}")
    save_json(args.metrics, metrics)
    print(f"annotator {arch}: test accuracy {metrics['test_accuracy']:.4f}, T={temperature:.3f}, "
          f"ECE {metrics['ece_before_calibration']:.4f} -> {metrics['ece_after_calibration']:.4f}")
    if "stacked" in metrics:
        check = metrics["stacked"]
        print(f"stacked test triples: accuracy {check['triple_accuracy']:.4f}, Kronecker prediction "
              f"{check['triple_accuracy_kronecker']:.4f} (chi2 {check['chi2']:.2f} on {check['dof']} dof)")


if __name__ == "__main__":
    run_cli(main)
