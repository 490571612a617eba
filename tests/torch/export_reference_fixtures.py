"""Exports weights and expected results from the PyTorch reference's own code, for
`tests/reference_fixture_test.ts`.

    python3 tests/torch/export_reference_fixtures.py --reference PATH/TO/continuous-thought-machines \
        [--out tests/fixtures/reference]

PATH is a checkout of the reference repository (it must hold `models/ctm.py`, `models/lstm.py`,
`models/modules.py`, `models/utils.py`, `models/constants.py`, `models/resnet.py` and
`utils/losses.py`). Nothing of it is copied: this script imports its classes, as a user of the reference
would. `huggingface_hub`, which `models/ctm.py` imports only for hub downloads, is replaced by a stub
when it is not installed.

For each case it builds the reference model (`ContinuousThoughtMachine` or `LSTMBaseline`) with a fixed
torch seed, runs one forward to create its lazy layers, trains it for a few AdamW steps with the
reference's own loss, then moves every parameter by a random amount (so that the ticks the loss picks
differ between samples; two decay parameters end outside [0, 15], which the reference clamps in
place), and saves

- `<case>.weights.safetensors`: the reference's `state_dict()` in float32, under its own names (index
  buffers included), exactly what a user of the reference would export;
- `<case>.expected.safetensors`: the input `x`, the targets, and from a float64 copy of the same model
  in training mode (see `expected_run`; the CTM stores predictions and certainties as float32, as
  the reference does): `predictions`, `certainties`, `loss` and every parameter's gradient of that loss
  (`grad.<name>`), plus per-tick tracking (`track.pre`, `track.post`, `track.attention`, and
  `track.synch_out` / `track.synch_action` for the CTM). The case's configuration (the reference's
  constructor arguments and the loss) is in the file's `__metadata__` under `config`.
"""
import argparse
import json
import os
import random
import struct
import subprocess
import sys
import types

import numpy as np
import torch

# Each case's seed draws its data and the weights' perturbation (uniform, ± `perturb`, default 0.3);
# the seeds were picked with `--seed` so that the most certain tick differs between samples, or with
# "vary": False is not the last tick (the exporter refuses otherwise).
CASES = {
    # The parity CTM: parity backbone, rotational 1D embedding, random-pairing with self pairs,
    # synapse depth 1, deep NLMs.
    "ctm_parity": {
        "seed": 1,
        "perturb": 1.0,
        "model": "ctm",
        "args": dict(iterations=5, d_model=16, d_input=8, heads=2, n_synch_out=8, n_synch_action=6,
                     synapse_depth=1, memory_length=4, deep_nlms=True, memory_hidden_dims=3,
                     do_layernorm_nlm=False, backbone_type="parity_backbone",
                     positional_embedding_type="custom-rotational-1d", out_dims=12,
                     prediction_reshaper=[6, 2], dropout=0, neuron_select_type="random-pairing",
                     n_random_pairing_self=2),
        "input": ("parity", [8, 6]),
        "loss": "parity",
    },
    # No backbone (features given as [B, C, L] tokens), U-Net synapses, linear NLMs, first-last.
    "ctm_unet_first_last": {
        "seed": 2,
        "model": "ctm",
        "args": dict(iterations=4, d_model=20, d_input=8, heads=2, n_synch_out=5, n_synch_action=4,
                     synapse_depth=3, memory_length=3, deep_nlms=False, memory_hidden_dims=2,
                     do_layernorm_nlm=False, backbone_type="none", positional_embedding_type="none",
                     out_dims=3, prediction_reshaper=[-1], dropout=0, neuron_select_type="first-last",
                     n_random_pairing_self=0),
        "input": ("features", [6, 6, 5]),
        "loss": "classification",
    },
    # Random selection (upper triangles of a non-symmetric outer product), memory length 1, 4 heads.
    "ctm_random_m1": {
        "seed": 6,
        "model": "ctm",
        "args": dict(iterations=3, d_model=12, d_input=8, heads=4, n_synch_out=4, n_synch_action=3,
                     synapse_depth=1, memory_length=1, deep_nlms=True, memory_hidden_dims=2,
                     do_layernorm_nlm=False, backbone_type="parity_backbone",
                     positional_embedding_type="custom-rotational-1d", out_dims=8,
                     prediction_reshaper=[4, 2], dropout=0, neuron_select_type="random",
                     n_random_pairing_self=0),
        "input": ("parity", [8, 4]),
        "loss": "parity",
    },
    # The reference's own golden parity test (tests/conftest.py, tests/test_data.py): seeded with 42,
    # untrained, first-last, one sequence [0, 1, 0, 1].
    "ctm_golden_parity": {
        "golden": True,
        "model": "ctm",
        "args": dict(iterations=10, d_model=32, d_input=4, heads=2, n_synch_out=3, n_synch_action=3,
                     synapse_depth=1, memory_length=5, deep_nlms=True, memory_hidden_dims=2,
                     do_layernorm_nlm=False, backbone_type="parity_backbone",
                     positional_embedding_type="custom-rotational-1d", out_dims=8,
                     prediction_reshaper=[4, 2], dropout=0.0, neuron_select_type="first-last",
                     n_random_pairing_self=0),
        "loss": "parity",
    },
    # LayerNorm over each neuron's history inside deep NLMs, the smallest U-Net (depth 2).
    "ctm_nlm_layernorm": {
        "seed": 7,
        "model": "ctm",
        "args": dict(iterations=4, d_model=12, d_input=8, heads=2, n_synch_out=6, n_synch_action=4,
                     synapse_depth=2, memory_length=4, deep_nlms=True, memory_hidden_dims=3,
                     do_layernorm_nlm=True, backbone_type="parity_backbone",
                     positional_embedding_type="custom-rotational-1d", out_dims=8,
                     prediction_reshaper=[4, 2], dropout=0, neuron_select_type="random-pairing",
                     n_random_pairing_self=1),
        "input": ("parity", [8, 4]),
        "loss": "parity",
    },
    # Image backbones and 2D positional embeddings: too large to commit (exported with --large). Every
    # sample picks the same tick here ("vary": False), but not the last one.
    "ctm_resnet18_1_fourier": {
        "large": True,
        "seed": 4,
        "vary": False,
        "model": "ctm",
        "args": dict(iterations=3, d_model=16, d_input=8, heads=2, n_synch_out=6, n_synch_action=4,
                     synapse_depth=1, memory_length=3, deep_nlms=True, memory_hidden_dims=2,
                     do_layernorm_nlm=False, backbone_type="resnet18-1",
                     positional_embedding_type="learnable-fourier", out_dims=5, prediction_reshaper=[-1],
                     dropout=0, neuron_select_type="random-pairing", n_random_pairing_self=0),
        "input": ("features", [8, 3, 16, 16]),
        "loss": "classification",
    },
    "ctm_resnet18_2_rotational": {
        "large": True,
        "seed": 3,
        "vary": False,
        "model": "ctm",
        "args": dict(iterations=3, d_model=16, d_input=8, heads=2, n_synch_out=5, n_synch_action=4,
                     synapse_depth=1, memory_length=3, deep_nlms=False, memory_hidden_dims=2,
                     do_layernorm_nlm=False, backbone_type="resnet18-2",
                     positional_embedding_type="custom-rotational", out_dims=5, prediction_reshaper=[-1],
                     dropout=0, neuron_select_type="first-last", n_random_pairing_self=0),
        "input": ("features", [8, 1, 16, 16]),
        "loss": "classification",
    },
    "ctm_resnet50_1_multi_fourier": {
        "large": True,
        "seed": 2,
        "vary": False,
        "model": "ctm",
        "args": dict(iterations=3, d_model=16, d_input=8, heads=2, n_synch_out=4, n_synch_action=3,
                     synapse_depth=1, memory_length=3, deep_nlms=True, memory_hidden_dims=2,
                     do_layernorm_nlm=False, backbone_type="resnet50-1",
                     positional_embedding_type="multi-learnable-fourier", out_dims=5,
                     prediction_reshaper=[-1], dropout=0, neuron_select_type="random",
                     n_random_pairing_self=0),
        "input": ("features", [8, 3, 12, 12]),
        "loss": "classification",
    },
    "lstm_resnet18_1": {
        "large": True,
        "seed": 9,
        "vary": False,
        "model": "lstm",
        "args": dict(iterations=3, d_model=6, d_input=8, heads=2, backbone_type="resnet18-1", num_layers=1,
                     positional_embedding_type="none", out_dims=5, prediction_reshaper=[-1], dropout=0),
        "input": ("features", [8, 3, 16, 16]),
        "loss": "classification",
    },
    # The LSTM parity baseline (two layers; the reference trains it on the last tick).
    "lstm_parity": {
        "seed": 16,
        "model": "lstm",
        "args": dict(iterations=4, d_model=6, d_input=8, heads=2, backbone_type="parity_backbone",
                     num_layers=2, positional_embedding_type="custom-rotational-1d", out_dims=8,
                     prediction_reshaper=[4, 2], dropout=0),
        "input": ("parity", [8, 4]),
        "loss": "parity_last_tick",
    },
}


def write_safetensors(path, tensors, dtype, metadata=None):
    """Our own minimal safetensors writer (so `safetensors` need not be installed)."""
    np_dtype, code = {"F32": (np.float32, "F32"), "F64": (np.float64, "F64")}[dtype]
    header, chunks, off = {}, [], 0
    for name, t in tensors.items():
        if t.dtype in (torch.int64, torch.int32):
            raw, st = t.detach().contiguous().to(torch.int64).numpy().tobytes(), "I64"
        else:
            raw, st = t.detach().contiguous().numpy().astype(np_dtype).tobytes(), code
        header[name] = {"dtype": st, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))
    os.replace(tmp, path)


def import_reference(root):
    if not os.path.isfile(os.path.join(root, "models", "ctm.py")):
        sys.exit(f"--reference {root}: no models/ctm.py there; give a checkout of the reference repository")
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        stub = types.ModuleType("huggingface_hub")
        stub.PyTorchModelHubMixin = type("PyTorchModelHubMixin", (), {})
        stub.hf_hub_download = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("offline stub"))
        sys.modules["huggingface_hub"] = stub
    sys.path.insert(0, root)
    from models.ctm import ContinuousThoughtMachine
    from models.lstm import LSTMBaseline
    from utils.losses import image_classification_loss, parity_loss
    return ContinuousThoughtMachine, LSTMBaseline, parity_loss, image_classification_loss


def expected_run(build, state, x, loss_fn):
    """Forward and backward of a float64 copy of the model holding `state`. Some reference modules
    build tensors with torch's default dtype (the Fourier embeddings' coordinates), so the default is
    float64 during the run; the 1D rotational embedding builds its start vector as float32 whatever
    the default, so where the first try fails on mixed dtypes that one module stays float32 (its
    output is promoted where it is added). Also returns the default dtype the run used."""
    for keep_pe_float in (False, True):
        ref = build()
        with torch.no_grad():
            ref(x)
        ref.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        ref = ref.double()
        if keep_pe_float:
            ref.positional_embedding.float()
        ref.train()
        xd = x.double()
        torch.set_default_dtype(torch.float64 if not keep_pe_float else torch.float32)
        try:
            preds, certs = ref(xd)[:2]
            loss = loss_fn(preds, certs)
            loss.backward()
            return preds, certs, loss, ref, xd, torch.float32 if keep_pe_float else torch.float64
        except RuntimeError as e:
            if keep_pe_float or not ("dtype" in str(e) or "scalar type" in str(e)):
                raise
        finally:
            torch.set_default_dtype(torch.float32)


def trained_and_moved(build, case, steps, loss_fn):
    """The case's model after `steps` AdamW steps with the reference's loss, every parameter then moved
    by a random amount (so that the ticks the loss picks differ between samples: trained this briefly,
    every sample is most certain at the last tick); decay parameters partly outside [0, 15]."""
    torch.manual_seed(0)
    np.random.seed(0)  # the reference draws its neuron selections with numpy
    gen = torch.Generator().manual_seed(case.get("seed", 1))
    model = build()
    kind, shape = case["input"]
    x, y = make_batch(kind, shape, case["args"]["out_dims"], gen)
    model.train()
    with torch.no_grad():
        model(x)  # creates the lazy layers
    opt = torch.optim.AdamW(model.parameters(), lr=3e-2, weight_decay=0.01)
    for _ in range(steps):
        xb, yb = make_batch(kind, shape, case["args"]["out_dims"], gen)
        preds, certs = model(xb)[:2]
        opt.zero_grad()
        loss_fn(preds, certs, yb).backward()
        opt.step()
    with torch.no_grad():
        for k, p in model.named_parameters():
            if k.startswith("decay_params"):
                p.copy_(torch.rand(p.shape, generator=gen) * 3)
                p[0], p[-1] = -0.5, 16.0
            else:
                p.add_((torch.rand(p.shape, generator=gen) - 0.5) * 2 * case.get("perturb", 0.3))
    return model, x, y


def golden_model(build, reference):
    """The model of the reference's own golden parity test (`tests/conftest.py`: every RNG seeded with
    42, then built and run once on [[0, 1, 0, 1]] in eval mode). Where the checkout has
    `tests/test_data.py`, its tracked outputs must match the golden values stored there."""
    random.seed(42)
    np.random.seed(42)
    torch.manual_seed(42)
    model = build()
    model.eval()
    x = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    with torch.no_grad():
        p, c, (s_out, s_act), pre, post, att = model(x, track=True)
    y = (torch.cumsum((x != 1).long(), dim=1) % 2).long()
    path = os.path.join(reference, "tests", "test_data.py")
    if not os.path.isfile(path):
        return model, x, y, "not compared (the checkout has no tests/test_data.py)"
    g = {}
    exec(compile(open(path).read(), path, "exec"), g)  # the reference's own golden tensors
    ours = {"PREDICTIONS": p, "CERTAINTIES": c, "SYNCH_OUT_TRACKING": s_out, "SYNCH_ACTION_TRACKING": s_act,
            "PRE_ACTIVATIONS_TRACKING": pre, "POST_ACTIVATIONS_TRACKING": post, "ATTENTIONS_TRACKING": att}
    worst = max(float(np.abs(np.asarray(v, np.float64) - np.asarray(g[f"GOLDEN_TEST_EXPECTED_{k}_PARITY"],
                                                                     np.float64)).max()) for k, v in ours.items())
    if worst > 1e-5:
        sys.exit(f"the reference model differs from its own golden parity values by {worst:.2e}")
    return model, x, y, f"reproduces the reference's tests/test_data.py golden parity values (max |diff| {worst:.1e})"


def make_batch(kind, shape, out_dims, gen):
    if kind == "parity":
        x = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
        y = (torch.cumsum((x < 0).long(), dim=1) % 2).long()
    else:
        x = torch.rand(shape, generator=gen) * 2 - 1
        y = torch.randint(0, out_dims, (shape[0],), generator=gen)
    return x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", required=True, help="checkout of the reference repository")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference"))
    ap.add_argument("--steps", type=int, default=4, help="AdamW steps before export (default 4)")
    ap.add_argument("--source", help="what the checkout is, recorded in each file's metadata "
                    "(default: `git rev-parse HEAD` of --reference)")
    ap.add_argument("--case", choices=list(CASES), help="export this case only (default: all)")
    ap.add_argument("--large", action="store_true", help="also export the large cases (image backbones)")
    ap.add_argument("--seed", type=int, help="override the case's seed (to pick a new one)")
    a = ap.parse_args()
    CTM, LSTM, parity_loss, classification_loss = import_reference(os.path.abspath(a.reference))
    source = a.source
    if source is None:
        git = subprocess.run(["git", "-C", a.reference, "rev-parse", "HEAD"], capture_output=True, text=True)
        source = git.stdout.strip() if git.returncode == 0 else "unrecorded"
    os.makedirs(a.out, exist_ok=True)

    def loss_of(kind, preds, certs, y, B, L):
        if kind == "classification":
            return classification_loss(preds, certs, y, use_most_certain=True)[0]
        return parity_loss(preds.reshape(B, L, 2, -1), certs, y, use_most_certain=kind == "parity")[0]

    for name, case in CASES.items():
        if (a.case and name != a.case) or (not a.case and case.get("large") and not a.large):
            continue
        if a.seed is not None:
            case = {**case, "seed": a.seed}
        build = lambda: (CTM if case["model"] == "ctm" else LSTM)(**case["args"])  # noqa: E731
        if case.get("golden"):
            model, x, y, note = golden_model(build, a.reference)
        else:
            model, x, y = trained_and_moved(build, case, a.steps, lambda p, c, yb: loss_of(
                case["loss"], p, c, yb, *case["input"][1][:2]))
            note = None
        B, L = x.shape[0], x.shape[1]
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        write_safetensors(os.path.join(a.out, f"{name}.weights.safetensors"), state, "F32")

        # The expected results: a float64 copy loaded with exactly the exported float32 weights.
        preds, certs, loss, ref, xd, run_dtype = expected_run(build, state, x, lambda p, c: loss_of(case["loss"], p, c, y, B, L))
        out = {"x": x, "targets": y.to(torch.int32), "predictions": preds, "certainties": certs,
               "loss": loss.reshape(1)}
        for k, p in ref.named_parameters():
            out[f"grad.{k}"] = p.grad if p.grad is not None else torch.zeros_like(p)
        with torch.no_grad():
            torch.set_default_dtype(run_dtype)
            try:
                tracked = ref(xd, track=True)
            finally:
                torch.set_default_dtype(torch.float32)
        if case["model"] == "ctm":
            (s_out, s_act), pre, post, attn = tracked[2], tracked[3], tracked[4], tracked[5]
            out["track.synch_out"], out["track.synch_action"] = torch.from_numpy(s_out), torch.from_numpy(s_act)
            out["track.pre"] = torch.from_numpy(pre)
        else:
            post, attn = tracked[4], tracked[5]
        out["track.post"], out["track.attention"] = torch.from_numpy(post), torch.from_numpy(attn)
        meta = {"config": json.dumps({"model": case["model"], "loss": case["loss"], **case["args"]}),
                "torch": torch.__version__, "reference": source, **({"golden": note} if note else {})}
        write_safetensors(os.path.join(a.out, f"{name}.expected.safetensors"), out, "F64", meta)
        # The loss picks ticks per sample; the check only bites where they vary.
        t_cert = certs[:, 1].argmax(-1).tolist()
        if case.get("golden"):
            pass
        elif len(set(t_cert)) < 2 if case.get("vary", True) else max(t_cert) == certs.shape[-1] - 1:
            sys.exit(f"{name}: the most certain ticks {t_cert} do not vary enough; change the case's seed")
        print(f"{name}: loss {loss.item():.6f}, {len(state)} weights, most certain ticks {t_cert}")


if __name__ == "__main__":
    main()
