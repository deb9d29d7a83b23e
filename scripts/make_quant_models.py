#!/usr/bin/python3
"""Models for the int8 tests (issue 4, item 2): a torchvision resnet18 at 1x3x112x112 with
random weights that carry signal (make_test_models.randomize), four calibration inputs and ten
test inputs (standard normal, seeded), and the fp32 model's logits for the test inputs as
computed by PyTorch. A test input is a draw whose top-2 logit margin is at least MARGIN of its
largest |logit|, twice the error int8 makes on this network (about 5% of the largest logit):
the project's rule that top-1 is compared where the reference's margin is clear. Without the
selection most draws of this random network have margins under 3%.

Usage: /usr/bin/python3 scripts/make_quant_models.py DIR [--if-stale]

Into DIR: resnet18_112.onnx, test/NN.npy (inputs), test/NN.logits.npy (fp32 logits),
cal/NN.npy (calibration inputs); and small/{mlp,lstm}.onnx with small/NAME/{cal,test}/ alike
(an MLP and an LSTM classifier, PyTorch's default initialisation). --if-stale does nothing when DIR holds what this version
of the script (and of make_test_models.py) writes.
"""
import fcntl
import hashlib
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_test_models as mtm  # noqa: E402

SEED = 20261206
SHAPE = (1, 3, 112, 112)
NTEST, NCAL = 10, 4
MARGIN = 0.1


def build(out):
    import torch
    import torchvision

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = torchvision.models.resnet18(weights=None)
    mtm.randomize(torch, model, gen, SHAPE)
    rng = np.random.default_rng(SEED)
    os.makedirs(os.path.join(out, "test"), exist_ok=True)
    os.makedirs(os.path.join(out, "cal"), exist_ok=True)
    for i in range(NCAL):
        np.save(os.path.join(out, "cal", f"{i:02d}.npy"), rng.standard_normal(SHAPE).astype(np.float32))
    draws = 0
    for i in range(NTEST):
        for _ in range(100):
            draws += 1
            x = rng.standard_normal(SHAPE).astype(np.float32)
            with torch.no_grad():
                y = model(torch.from_numpy(x)).numpy()
            top2 = np.sort(y[0])[-2:]
            if top2[1] - top2[0] >= MARGIN * np.abs(y).max():
                break
        else:
            raise AssertionError("no input with a clear top-1 class in 100 draws")
        np.save(os.path.join(out, "test", f"{i:02d}.npy"), x)
        np.save(os.path.join(out, "test", f"{i:02d}.logits.npy"), y)
    print(f"make_quant_models: {NTEST} test inputs with a margin >= {MARGIN} from {draws} draws")
    path = os.path.join(out, "resnet18_112.onnx")
    x = torch.from_numpy(rng.standard_normal(SHAPE).astype(np.float32))
    torch.onnx.export(model, x, path, opset_version=mtm.OPSET, input_names=["input"],
                      output_names=["logits"], do_constant_folding=True)


def small_models(out):
    """An MLP and an LSTM classifier (the TPU v1 paper's other app kinds), fp32 logits for
    three test inputs, four calibration inputs each: small/NAME.onnx, small/NAME/{cal,test}."""
    import torch
    nn = torch.nn
    torch.manual_seed(SEED + 1)

    class LSTMHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(input_size=16, hidden_size=32, batch_first=True)
            self.head = nn.Linear(32, 8)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.head(y.mean(dim=1))

    nets = [("mlp", nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)),
             (4, 64)),
            ("lstm", LSTMHead(), (2, 12, 16))]
    rng = np.random.default_rng(SEED + 1)
    for name, model, shape in nets:
        model.eval()
        d = os.path.join(out, "small", name)
        for sub in ("cal", "test"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for i in range(4):
            np.save(os.path.join(d, "cal", f"{i:02d}.npy"), rng.standard_normal(shape).astype(np.float32))
        for i in range(3):
            x = rng.standard_normal(shape).astype(np.float32)
            with torch.no_grad():
                y = model(torch.from_numpy(x)).numpy()
            np.save(os.path.join(d, "test", f"{i:02d}.npy"), x)
            np.save(os.path.join(d, "test", f"{i:02d}.logits.npy"), y)
        torch.onnx.export(model, torch.from_numpy(x), os.path.join(out, "small", name + ".onnx"), opset_version=14,
                          input_names=["input"], output_names=["logits"], do_constant_folding=True)


def main(argv):
    out = argv[0]
    os.makedirs(out, exist_ok=True)
    h = hashlib.sha256()
    for f in (__file__, mtm.__file__):
        with open(f, "rb") as fh:
            h.update(fh.read())
    digest = h.hexdigest()
    stamp = os.path.join(out, ".stamp")
    with open(os.path.join(out, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if "--if-stale" in argv:
            try:
                with open(stamp) as f:
                    if f.read().strip() == digest:
                        return
            except OSError:
                pass
        if os.path.exists(stamp):
            os.remove(stamp)
        build(out)
        small_models(out)
        with open(stamp, "w") as f:
            f.write(digest + "\n")
        print(f"make_quant_models: wrote resnet18_112 and {NTEST} + {NCAL} inputs into {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
