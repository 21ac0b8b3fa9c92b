"""Benchmark: the label stage's throughput against the annotator's raw forward pass.

    python benchmarks/label_throughput.py                      # 10,000 64x64 RGB images, small CNN
    python benchmarks/label_throughput.py --arch resnet18 --n 2000

Both sides use the same saved annotator (fresh weights: throughput does not depend on them),
the same batch size (``audit.models.classifier.predict_logits``'s) and the same threads:

* **raw forward**: the model on batches already converted to float tensors, under
  ``torch.inference_mode`` (the floor: what a GPU-free forward pass costs);
* **label stage**: ``audit.label.main`` on the ``.npy`` file, in this process (interpreter and
  torch import excluded, the same for every stage): reading the uint8 memmap, converting,
  the forward pass, the calibrated softmax, the per-sample table and its atomic CSV write.

Prints images/s of each and their ratio (target: the stage at least 80% of the raw pass).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="images (default 10,000)")
    parser.add_argument("--size", type=int, default=64, help="image side (default 64, RGB)")
    parser.add_argument("--arch", default="smallcnn", help="annotator architecture (smallcnn | resnet18)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each side (best is kept)")
    args = parser.parse_args()

    from audit import label
    from audit.models.classifier import build_classifier, predict_logits, save_classifier, to_tensor

    torch.set_num_threads(args.threads)
    shape = (args.size, args.size, 3)
    batch_size = inspect.signature(predict_logits).parameters["batch_size"].default
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_classifier(args.arch, shape, 10).eval()
        save_classifier(tmp / "model.pt", model, args.arch, shape, [str(k) for k in range(10)])
        images = np.random.default_rng(0).integers(0, 256, (args.n, *shape), dtype=np.uint8)
        np.save(tmp / "samples.npy", images)
        np.save(tmp / "planted.npy", np.full(args.n, -1, dtype=np.int64))
        batches = [to_tensor(images[s : s + batch_size]) for s in range(0, args.n, batch_size)]

        def raw() -> None:
            with torch.inference_mode():
                for x in batches:
                    model(x)

        def stage() -> None:
            label.main(["--annotator", str(tmp / "model.pt"), "--samples", str(tmp / "samples.npy"),
                        "--planted-labels", str(tmp / "planted.npy"), "--out", str(tmp / "labels.csv"),
                        "--threads", str(args.threads), "--device", "cpu"])

        times = {}
        for name, run in (("raw forward", raw), ("label stage", stage)):
            run()  # warm-up: allocator, kernels, page cache
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - start)
            times[name] = best
    print(f"{args.n} images {shape}, {args.arch}, batch {batch_size}, {args.threads} threads, best of {args.repeats}")
    for name, seconds in times.items():
        print(f"  {name:<12} {seconds:7.2f} s  {args.n / seconds:8.0f} images/s")
    print(f"  label stage / raw forward throughput: {times['raw forward'] / times['label stage']:.1%} (target >= 80%)")


if __name__ == "__main__":
    main()
