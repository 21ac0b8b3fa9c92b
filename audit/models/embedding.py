"""The annotator's embedding: the activations its final linear layer reads, L2-normalised.

For the ``smallcnn`` (:func:`audit.models.classifier.build_classifier`) that is the 128-d output
of ``Flatten`` after global average pooling (Dropout is the identity in eval mode); for
``resnet18`` the 512-d input of ``fc``. Both are found the same way: a forward pre-hook on the
model's last :class:`torch.nn.Linear`, so the model is run unchanged.

Why this space: Arora & Zhang rank candidate duplicates by pixel L2 on aligned faces and by a
CNN's top layer on CIFAR-10; the annotator is the CNN ganaudit already trains on the user's real
data, so its penultimate layer is a similarity space tuned to the data, with no download.
Normalising to unit length makes distances chord distances in [0, 2] (d^2 = 2 - 2 cos), so a
sample's overall activation level does not count as dissimilarity.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from audit.models.classifier import to_tensor

#: images per forward pass
BATCH = 512


def final_linear(model: nn.Module) -> nn.Linear:
    """The last :class:`torch.nn.Linear` of ``model`` (its classifier head)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no linear layer whose input could serve as an embedding")
    return linears[-1]


@torch.no_grad()
def embed(model: nn.Module, images: np.ndarray, batch_size: int = BATCH, device: str = "cpu") -> np.ndarray:
    """float32 (N, D) unit-length embeddings of uint8 (N, H, W, C) ``images`` (read batch by
    batch, so a memmap stays on disk). An all-zero activation vector (possible after a ReLU)
    stays all zero rather than being divided by zero."""
    model.eval()
    head = final_linear(model)
    captured: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0].detach()))
    out = np.empty((images.shape[0], head.in_features), dtype=np.float32)
    try:
        for start in range(0, images.shape[0], batch_size):
            captured.clear()
            model(to_tensor(np.asarray(images[start:start + batch_size]), device))
            features = captured[0].flatten(1).double()
            features = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
            out[start:start + features.shape[0]] = features.float().cpu().numpy()
    finally:
        hook.remove()
    return out
