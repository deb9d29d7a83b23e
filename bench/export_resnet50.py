#!/usr/bin/python3
"""Writes torchvision's ResNet-50 (random weights, seeded; 1x3x224x224, batch 1) as ONNX
for `make bench`: the model both Systole and ONNX Runtime run.

Usage: /usr/bin/python3 bench/export_resnet50.py OUT.onnx

torchvision cannot download pretrained weights here, and the benchmark does not need
them: the work (and the values' magnitudes, thanks to BatchNorm) is the same. Needs
Debian's python3-torch and python3-torchvision.
"""
import sys

import torch
import torchvision


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    torch.manual_seed(20240605)
    model = torchvision.models.resnet50(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, x, sys.argv[1], opset_version=13, input_names=["input"], output_names=["logits"])


if __name__ == "__main__":
    main()
