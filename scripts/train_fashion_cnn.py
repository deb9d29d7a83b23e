#!/usr/bin/python3
"""Trains the small Fashion-MNIST CNN of examples/fashion and exports it to ONNX.

Usage: /usr/bin/python3 scripts/train_fashion_cnn.py [--out-dir examples/fashion]
                                                     [--epochs 10] [--images 16] [--threads 1]

Needs Debian's python3-torch, python3-numpy and python3-onnx, and the
dataset-fashion-mnist package (read straight from /usr/share/datasets/fashion-mnist,
no download). Only retraining needs torch: running or testing the committed model
does not. Fixed seeds and one torch thread by default: about 40 s, and the same model
every time with the same torch build (the thread count changes the float rounding, so
--threads 2 trains a slightly different model; it is barely faster on a model this small
and many times slower when another process keeps one of two cores busy).

The model (about 20 k parameters, LeNet-like, 5x5 convolutions without padding):

    image f32[1,1,28,28]
    Conv 8x5x5  -> ReLU -> MaxPool 2x2   8x24x24 -> 8x12x12
    Conv 16x5x5 -> ReLU -> MaxPool 2x2  16x8x8   -> 16x4x4
    Flatten (256) -> Gemm 64 -> ReLU -> Gemm 10
    logits f32[1,10]

Input normalisation, which the model expects and the committed .npy images already
have: x = (pixel / 255 - MEAN) / STD with the constants below (the training set's
mean and standard deviation, rounded to 4 digits).

Writes into the output directory:
    fashion_cnn.onnx         opset 13, input `image`, output `logits`, batch fixed to 1
    images/NN_<label>.npy    the first N test-set images, normalised, f32[1,1,28,28]
    labels.txt               the 10 class names, line i is class i
It prints the test accuracy and how many of the exported images the model gets right.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import onnx
import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"
MEAN = 0.2860
STD = 0.3530
SEED = 1234
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path, magic, ndim):
    """Reads an IDX file (big-endian header, unsigned bytes) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    m = int.from_bytes(data[0:4], "big")
    if m != magic:
        sys.exit(f"{path}: bad IDX magic {m:#x}, expected {magic:#x}")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        sys.exit(f"{path}: {arr.size} values, header says {dims}")
    return arr.reshape(dims)


def load(split):
    images = read_idx(os.path.join(DATA, f"{split}-images-idx3-ubyte.gz"), 0x803, 3)
    labels = read_idx(os.path.join(DATA, f"{split}-labels-idx1-ubyte.gz"), 0x801, 1)
    x = ((images.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)
    return x[:, None, :, :], labels.astype(np.int64)


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Linear(16 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i:i + 1000])).argmax(1)
                          for i in range(0, len(x), 1000)])
    return int((pred.numpy() == y).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default="examples/fashion")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: the committed model was trained so)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)

    xtr, ytr = load("train")
    xte, yte = load("t10k")
    print(f"train {xtr.shape}, mean {xtr.mean():.4f} std {xtr.std():.4f} after normalisation; "
          f"test {xte.shape}")

    model = FashionCNN()
    nparams = sum(p.numel() for p in model.parameters())
    print(f"{nparams} parameters")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    batch = 64
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(xtr))
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            xb, yb = torch.from_numpy(xtr[idx]), torch.from_numpy(ytr[idx])
            opt.zero_grad()
            loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        correct = evaluate(model, xte, yte)
        print(f"epoch {epoch + 1}: train loss {total / len(xtr):.4f}, "
              f"test accuracy {correct}/{len(xte)} = {100 * correct / len(xte):.2f}%, "
              f"{time.time() - t0:.0f} s")

    model.eval()
    os.makedirs(os.path.join(args.out_dir, "images"), exist_ok=True)
    path = os.path.join(args.out_dir, "fashion_cnn.onnx")
    dummy = torch.from_numpy(xte[:1])
    torch.onnx.export(model, dummy, path, opset_version=13, input_names=["image"],
                      output_names=["logits"], do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    print(f"wrote {path}: {os.path.getsize(path)} bytes, "
          f"ops {' '.join(n.op_type for n in m.graph.node)}")

    for name in os.listdir(os.path.join(args.out_dir, "images")):
        if name.endswith(".npy"):
            os.remove(os.path.join(args.out_dir, "images", name))
    right = 0
    with torch.no_grad():
        for i in range(args.images):
            img = np.ascontiguousarray(xte[i:i + 1], dtype=np.float32)
            np.save(os.path.join(args.out_dir, "images", f"{i:02d}_{yte[i]}.npy"), img)
            pred = int(model(torch.from_numpy(img)).argmax(1))
            right += pred == yte[i]
            print(f"  image {i:02d}: label {yte[i]} ({CLASSES[yte[i]]}), predicted {pred}"
                  f"{'' if pred == yte[i] else '  WRONG'}")
    print(f"the model gets {right} of the first {args.images} test images right")

    with open(os.path.join(args.out_dir, "labels.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")


if __name__ == "__main__":
    main()
