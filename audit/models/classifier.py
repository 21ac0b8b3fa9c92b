"""Image classifiers: the annotator and the classifiers trained on GAN or real samples.

Images enter as uint8 (N, H, W, C) arrays and are scaled to [-1, 1] in channels-first float
batches here, one batch at a time, so no dataset is ever held as float.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
import torch.nn.functional as F

ARCHITECTURES = ("smallcnn", "resnet18")


def to_tensor(images: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def choose_architecture(arch: str, image_shape: tuple[int, int, int]) -> str:
    """``auto``: the small CNN up to 32x32 pixels, ResNet-18 above."""
    if arch != "auto":
        return arch
    return "smallcnn" if max(image_shape[:2]) <= 32 else "resnet18"


def build_classifier(arch: str, image_shape: tuple[int, int, int], n_classes: int, width: float = 1.0) -> nn.Module:
    """A fresh classifier for (H, W, C) images.

    ``smallcnn``: three 3x3 conv blocks (32-64-128 channels, BatchNorm, ReLU, two 2x pools), global
    average pooling, dropout, linear; about 95k parameters; made for 8x8 to 32x32 inputs.
    ``width`` (small CNN only) scales the three channel counts to round(32 w), round(64 w),
    round(128 w) (at least 1 each); 1 is the network above, bit for bit. From
    64x64 up the first conv has stride 2, so the feature maps are those of a half-size input and
    a step costs about what it costs at 32x32 (at stride 1, 300 steps of batch 32 on 64x64
    scenes took about 3 min on one CPU core).
    ``resnet18``: torchvision ResNet-18 trained from scratch with the stem adapted to small
    images: a 3x3 stride-1 first conv instead of 7x7 stride 2; the 3x3 max-pool is kept from
    64x64 up (layer1 then sees 32x32 maps, as a CIFAR ResNet does, at a quarter of the cost of
    dropping it) and dropped below. 11M parameters.
    """
    arch = choose_architecture(arch, image_shape)
    channels = image_shape[2]
    if arch == "smallcnn":
        def block(c_in, c_out, stride=1):
            return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True)]

        c1, c2, c3 = (max(1, round(c * width)) for c in (32, 64, 128))
        return nn.Sequential(
            *block(channels, c1, stride=2 if min(image_shape[:2]) >= 64 else 1), *block(c1, c2), nn.MaxPool2d(2),
            *block(c2, c3), nn.MaxPool2d(2) if min(image_shape[:2]) >= 8 else nn.Identity(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(c3, n_classes),
        )
    if width != 1.0 and arch in ARCHITECTURES:
        raise ValueError(f"width applies to the small CNN only, got width {width} for '{arch}'")
    if arch == "resnet18":
        from torchvision.models import resnet18

        model = resnet18(weights=None, num_classes=n_classes)
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        if min(image_shape[:2]) < 64:
            model.maxpool = nn.Identity()
        return model
    raise ValueError(f"unknown architecture '{arch}', expected one of {ARCHITECTURES} or 'auto'")


def augment(x: torch.Tensor, generator: torch.Generator, flip: bool, shift: int) -> torch.Tensor:
    """Random horizontal flips and integer shifts of up to ``shift`` pixels (reflect padding)."""
    if flip:
        mask = torch.rand(x.shape[0], generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None].to(x.device), x.flip(3), x)
    if shift > 0:
        h, w = x.shape[2:]
        padded = F.pad(x, (shift,) * 4, mode="reflect" if min(h, w) > shift else "replicate")
        dy, dx = torch.randint(0, 2 * shift + 1, (2,), generator=generator).tolist()
        x = padded[:, :, dy : dy + h, dx : dx + w]
    return x


@dataclass
class TrainResult:
    model: nn.Module
    best_epoch: int
    history: list[dict]
    #: optimisation steps taken when the kept weights were reached (``steps`` mode only)
    best_step: int | None = None


def train_classifier(
    model: nn.Module,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray | None,
    val_labels: np.ndarray | None,
    epochs: int | None = None,
    batch_size: int = 64,
    lr: float = 2e-3,
    weight_decay: float = 5e-4,
    flip: bool = False,
    shift: int = 0,
    patience: int = 10,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    steps: int | None = None,
    eval_every: int | None = None,
    select: str = "accuracy",
) -> TrainResult:
    """AdamW with a cosine schedule; keeps the weights of the best validation epoch.

    Early stopping: training ends after ``patience`` epochs without a better validation
    accuracy (ties broken by lower validation loss). Without a validation set the last epoch is
    kept. Deterministic for a given ``seed`` on the CPU.

    ``steps`` (instead of ``epochs``): a fixed budget of optimisation steps, whatever the number
    of training images, so cost does not grow with the training set. The schedule spans
    ``steps``; the shuffled passes over the data continue until the budget is spent. Validation
    then runs every ``eval_every`` steps (default ``max(1, steps // 10)``) and after the last
    step, ``patience`` counts validations rather than epochs, history records carry ``step``,
    and :attr:`TrainResult.best_step` is the step of the kept weights.

    ``select``: what "better" means. ``"accuracy"`` (the default): higher validation accuracy,
    ties by lower loss. ``"loss"``: lower validation cross-entropy alone (the discriminators'
    ladder, whose two classes can be partly indistinguishable, so accuracy is flat where the
    loss still sees overfitting; audit/metrics/TWO_SAMPLE.md, "Model selection").
    """
    if select not in ("accuracy", "loss"):
        raise ValueError(f"train_classifier: select must be 'accuracy' or 'loss', got {select!r}")
    if (epochs is None) == (steps is None):
        raise ValueError("train_classifier: give exactly one of epochs or steps")
    if steps is not None and (steps < 1 or train_images.shape[0] < 2):
        raise ValueError("train_classifier: steps mode needs steps >= 1 and at least 2 training images")
    eval_every = max(1, steps // 10) if steps is not None and eval_every is None else eval_every
    generator = torch.Generator().manual_seed(seed)
    model = model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, int(np.ceil(train_images.shape[0] / batch_size)))
    total_steps = epochs * steps_per_epoch if steps is None else steps
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=total_steps)
    labels = torch.from_numpy(np.asarray(train_labels, dtype=np.int64))
    best, best_state, history, since_best = (-1.0, float("inf")), None, [], 0
    best_step = None
    step, stop = 0, False

    def validate(record: dict, when: int) -> None:
        nonlocal best, best_state, best_epoch, best_step, since_best
        logits = predict_logits(model, val_images, device=device)
        val_labels_t = torch.from_numpy(np.asarray(val_labels, dtype=np.int64))
        val_loss = float(F.cross_entropy(logits, val_labels_t))
        val_acc = float((logits.argmax(1) == val_labels_t).float().mean())
        record.update(val_loss=val_loss, val_accuracy=val_acc)
        better = (val_acc, -val_loss) > (best[0], -best[1]) if select == "accuracy" else val_loss < best[1]
        if better:
            best, since_best = (val_acc, val_loss), 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_epoch, best_step = when, (step if steps is not None else None)
        else:
            since_best += 1

    epoch_iter = range(epochs) if steps is None else itertools.count()  # steps: until the budget is spent
    if progress:
        from tqdm import tqdm

        epoch_iter = tqdm(epoch_iter, desc="train classifier", unit="epoch", mininterval=2)
    for epoch in epoch_iter:
        model.train()
        order = torch.randperm(train_images.shape[0], generator=generator).numpy()
        total_loss, seen = 0.0, 0
        for start in range(0, order.shape[0], batch_size):
            idx = np.sort(order[start : start + batch_size])
            if idx.shape[0] < 2:
                continue  # BatchNorm cannot train on a single image
            x = augment(to_tensor(train_images[idx], device), generator, flip, shift)
            loss = F.cross_entropy(model(x), labels[idx].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total_loss += loss.item() * idx.shape[0]
            if steps is not None:
                step, seen = step + 1, seen + idx.shape[0]
                if step % eval_every == 0 or step == steps:
                    record = {"step": step, "epoch": epoch, "train_loss": total_loss / seen}
                    total_loss, seen = 0.0, 0
                    if val_images is not None:
                        validate(record, epoch)
                        model.train()
                    history.append(record)
                    stop = step >= steps or (val_images is not None and since_best >= patience)
                    if stop:
                        break
        if steps is not None:
            if stop:
                break
            continue
        record = {"epoch": epoch, "train_loss": total_loss / order.shape[0]}
        if val_images is not None:
            validate(record, epoch)
        history.append(record)
        if val_images is not None and since_best >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    elif steps is not None:
        best_epoch, best_step = history[-1]["epoch"], step
    else:
        best_epoch = len(history) - 1
    model.eval()
    return TrainResult(model, best_epoch, history, best_step)


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, batch_size: int = 512, device: str = "cpu") -> torch.Tensor:
    """(N, K) logits on the CPU for uint8 (N, H, W, C) images, read batch by batch."""
    model.eval()
    out = [model(to_tensor(np.asarray(images[s : s + batch_size]), device)).cpu()
           for s in range(0, images.shape[0], batch_size)]
    return torch.cat(out)


def fit_temperature(logits: torch.Tensor, labels: np.ndarray) -> float:
    """Temperature T > 0 minimising the NLL of softmax(logits / T) (Guo et al. 2017)."""
    labels_t = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    log_t = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels_t)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_t.detach().exp())


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE: bin samples by confidence (equal-width bins), average |accuracy - confidence|
    weighted by bin size. ``probabilities`` is (N, K)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        members = bins == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def save_classifier(path, model: nn.Module, arch: str, image_shape, class_names, temperature: float = 1.0) -> None:
    """Weights plus everything needed to rebuild the model, written atomically and byte-reproducibly."""
    from audit.io import save_torch

    save_torch(path, {"arch": arch, "image_shape": list(image_shape), "class_names": list(class_names),
                      "temperature": temperature, "state_dict": model.state_dict()})


def load_classifier(path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Inverse of :func:`save_classifier`: (model in eval mode, its metadata)."""
    from audit.io import AuditInputError
    from pathlib import Path

    if not Path(path).is_file():
        raise AuditInputError(f"{path}: classifier file not found")
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = build_classifier(checkpoint["arch"], tuple(checkpoint["image_shape"]), len(checkpoint["class_names"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval(), checkpoint


def calibrated_probabilities(model: nn.Module, temperature: float, images: np.ndarray, device: str = "cpu") -> np.ndarray:
    """(N, K) softmax(logits / T) as float64 numpy."""
    logits = predict_logits(model, images, device=device)
    return torch.softmax(logits.double() / temperature, dim=1).numpy()


def prediction_table(rows: np.ndarray, labels: np.ndarray | None, probabilities: np.ndarray) -> pd.DataFrame:
    """One row per image: row, [label], predicted (argmax class), confidence (its probability),
    p_0 .. p_{K-1}; ``rows`` (N,) image indices, ``labels`` (N,) true classes or None,
    ``probabilities`` (N, K) calibrated class probabilities."""
    table = pd.DataFrame({"row": rows})
    if labels is not None:
        table["label"] = labels
    table["predicted"] = probabilities.argmax(axis=1)
    table["confidence"] = probabilities.max(axis=1)
    for k in range(probabilities.shape[1]):
        table[f"p_{k}"] = probabilities[:, k]
    return table
