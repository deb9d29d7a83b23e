#!/bin/sh
# HLO text modules (tests/hlo/*.hlo, written in the style JAX prints) through
# `systole run`, checked against numpy references computed here in float64:
# both precisions (highest within 1e-4 of the largest reference value,
# default within 2e-2), ten SGD steps of the training step with the new
# parameters fed back (the loss must go down), and malformed modules (an error
# with line and column, exit 1, never a crash).
set -u
BUILD=$1
SYSTOLE="$BUILD/systole"
PY=/usr/bin/python3
H=tests/hlo
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passes=0
fails=0
ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL: $1"; [ -f "$TMP/out" ] && head -20 "$TMP/out"; }

# expect CODE TEXT command...: exit code and a line of output containing TEXT
expect() {
  code=$1; text=$2; shift 2
  "$@" >"$TMP/out" 2>&1
  rc=$?
  if [ "$rc" -ne "$code" ]; then bad "'$*' exited $rc, want $code"
  elif [ -n "$text" ] && ! grep -qF -- "$text" "$TMP/out"; then bad "'$*' does not say '$text'"
  else ok; fi
}

# The references: inputs and expected outputs of every module, in float64.
cat >"$TMP/ref.py" <<'EOF'
import math, sys, os
import numpy as np
D = sys.argv[2]
rng = np.random.default_rng(7)
def u(*s, scale=1.0): return (rng.uniform(-1, 1, s) * scale).astype(np.float32)

def mlp(x, w1, b1, w2, b2):
    return np.maximum(x @ w1 + b1, 0) @ w2 + b2

def conv_nhwc(x, w, pad):
    n, hh, ww, c = x.shape
    kh, kw, _, o = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    y = np.zeros((n, hh, ww, o))
    for i in range(kh):
        for j in range(kw):
            y += np.einsum('nhwc,co->nhwo', xp[:, i:i + hh, j:j + ww, :], w[i, j])
    return y

def cnn(x, b, w2, b2):
    w = np.array([round(0.3 * math.sin(0.7 * k + 0.1), 4) for k in range(108)]).reshape(3, 3, 3, 4)
    h = np.maximum(conv_nhwc(x, w, 1) + b, 0)
    h = h.reshape(2, 4, 2, 4, 2, 4).max(axis=(2, 4))
    return h.reshape(2, 64) @ w2 + b2

def train(w1, b1, w2, b2, x, y):
    h = np.tanh(x @ w1 + b1)
    out = h @ w2 + b2
    d = out - y
    loss = np.mean(d * d)
    g = 2 * d / d.size
    gw2, gb2 = h.T @ g, g.sum(0)
    gp = (g @ w2.T) * (1 - h * h)
    gw1, gb1 = x.T @ gp, gp.sum(0)
    return w1 - 0.1 * gw1, b1 - 0.1 * gb1, w2 - 0.1 * gw2, b2 - 0.1 * gb2, np.float64(loss)

def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)

def layernorm(x, g, b):
    m = x.mean(axis=1, keepdims=True)
    v = ((x - m) ** 2).mean(axis=1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-5) * g + b

def attention(q, k, v):
    return softmax(q @ k.T / 4) @ v

def masked(x, lens):
    mask = np.arange(8)[None, :] < lens[:, None]
    sm = softmax(np.where(mask, x, -np.inf))
    mn = x.reshape(2, 2, 4, 2).min(axis=(1, 3))
    pr = x.reshape(4, 4, 2).prod(axis=2)
    return sm, np.where(x > 0, x, 0.0), mask.astype(np.float64).sum(1), np.trunc(x * 4), mn, pr

cases = {
    'masked': (masked, [u(4, 8, scale=3), np.array([8, 3, 1, 5], dtype=np.int32)]),
    'softmax': (softmax, [u(4, 10, scale=3)]),
    'layernorm': (layernorm, [u(4, 16, scale=2), u(16), u(16)]),
    'attention': (attention, [u(8, 16), u(8, 16), u(8, 16)]),
    'mlp': (mlp, [u(8, 16), u(16, 32, scale=0.5), u(32), u(32, 10, scale=0.5), u(10)]),
    'cnn': (cnn, [u(2, 8, 8, 3), u(4), u(64, 10, scale=0.3), u(10)]),
    'train_step': (train, [u(4, 16), u(16, scale=0.1), u(16, 3, scale=0.5), u(3, scale=0.1), u(8, 4), u(8, 3)]),
}
if sys.argv[1] == 'gen':
    for name, (f, ins) in cases.items():
        os.makedirs(f'{D}/{name}', exist_ok=True)
        for k, a in enumerate(ins): np.save(f'{D}/{name}/in{k}.npy', a)
        outs = f(*[a.astype(np.float64) for a in ins])
        outs = outs if isinstance(outs, tuple) else (outs,)
        for k, a in enumerate(outs): np.save(f'{D}/{name}/ref{k}.npy', np.asarray(a))
elif sys.argv[1] == 'check':  # check DIR NAME OUTDIR TOL
    name, outdir, tol = sys.argv[3], sys.argv[4], float(sys.argv[5])
    k = 0
    while os.path.exists(f'{D}/{name}/ref{k}.npy'):
        ref = np.load(f'{D}/{name}/ref{k}.npy')
        got = np.load(f'{outdir}/{k}.npy')
        assert got.shape == ref.shape, (k, got.shape, ref.shape)
        err = np.max(np.abs(got - ref)) if ref.size else 0
        lim = tol * max(np.max(np.abs(ref)), 1e-30)
        assert err <= lim, f'output {k}: max error {err:.3g} > {lim:.3g}'
        k += 1
    assert k > 0
elif sys.argv[1] == 'losses':  # losses DIR: the loss of each step goes down
    ls = [float(np.load(f'{D}/step{s}/4.npy')) for s in range(10)]
    print(' '.join(f'{v:.5f}' for v in ls))
    assert all(b < a for a, b in zip(ls, ls[1:])), ls
    assert ls[-1] < 0.8 * ls[0], ls
EOF
if $PY "$TMP/ref.py" gen "$TMP" >"$TMP/out" 2>&1; then ok; else bad "numpy references"; fi

inputs() { # the --input options of a module's inputs
  k=0; args=""
  while [ -f "$TMP/$1/in$k.npy" ]; do args="$args --input $k=$TMP/$1/in$k.npy"; k=$((k + 1)); done
  echo "$args"
}

for m in mlp cnn softmax layernorm attention train_step masked; do
  for prec in highest default; do
    tol=1e-4; [ $prec = default ] && tol=2e-2
    # shellcheck disable=SC2046
    expect 0 '' "$SYSTOLE" run $H/$m.hlo $(inputs $m) --precision $prec --output-dir "$TMP/$m/out-$prec" -q
    if $PY "$TMP/ref.py" check "$TMP" $m "$TMP/$m/out-$prec" $tol >"$TMP/out" 2>&1; then ok
    else bad "$m at precision $prec differs from numpy"; fi
  done
done

# Ten training steps through the simulator, parameters fed back: the loss goes down.
X=$TMP/train_step
cp "$X/in0.npy" "$X/p0.npy"; cp "$X/in1.npy" "$X/p1.npy"; cp "$X/in2.npy" "$X/p2.npy"; cp "$X/in3.npy" "$X/p3.npy"
s=0
while [ $s -lt 10 ]; do
  expect 0 '' "$SYSTOLE" run $H/train_step.hlo --input 0="$X/p0.npy" --input 1="$X/p1.npy" --input 2="$X/p2.npy" \
    --input 3="$X/p3.npy" --input 4="$X/in4.npy" --input 5="$X/in5.npy" --output-dir "$TMP/step$s" -q
  for k in 0 1 2 3; do cp "$TMP/step$s/$k.npy" "$X/p$k.npy" 2>/dev/null; done
  s=$((s + 1))
done
if $PY "$TMP/ref.py" losses "$TMP" >"$TMP/out" 2>&1; then ok; echo "losses: $(cat "$TMP/out")"; else bad "the loss does not go down over ten steps"; fi

# compile: an executable whose outputs are named by number.
expect 0 '5 outputs' "$SYSTOLE" compile $H/train_step.hlo -o "$TMP/t.stx"
expect 0 '' "$SYSTOLE" run "$TMP/t.stx" --output-dir "$TMP/stx" -q
if [ -f "$TMP/stx/4.npy" ]; then ok; else bad "the .stx run wrote no 4.npy"; fi

# Malformed modules: a message with line and column, exit 1.
printf 'HloModule m\n\nENTRY main {\n  p = f32[2] parameter(0)\n  ROOT a = f32[2] add(p, p' >"$TMP/trunc.hlo"
expect 1 'trunc.hlo:5:' "$SYSTOLE" run "$TMP/trunc.hlo"
printf 'HloModule m\nENTRY main {\n  p = f32[2] parameter(0)\n  ROOT s = f32[2] sort(p), dimensions={0}\n}\n' >"$TMP/op.hlo"
expect 1 "op.hlo:4:19: 's': unsupported instruction 'sort'" "$SYSTOLE" run "$TMP/op.hlo"
printf 'HloModule m\nENTRY main {\n  p = f32[2,3] parameter(0)\n  ROOT a = f32[3,2] add(p, p)\n}\n' >"$TMP/shape.hlo"
expect 1 'shape.hlo:4:21:' "$SYSTOLE" run "$TMP/shape.hlo"
expect 1 'shape mismatch' "$SYSTOLE" run "$TMP/shape.hlo"
printf 'HloModule m\nENTRY main {\n  p = f32[2] parameter(0)\n  ROOT c = f32[2] call(p), to_apply=nowhere\n}\n' >"$TMP/comp.hlo"
expect 1 "comp.hlo:4:37: computation 'nowhere' is not defined" "$SYSTOLE" run "$TMP/comp.hlo"

echo "cli_hlo: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
