"""The CTM bench step in PyTorch on this machine's CPU, for comparison with `ctm_step_bench.ts`.

    python3 bench/torch_ctm_step.py [--steps 5] [--repeat 3] [--threads 2]

Same configuration and step as `bench/parity_step.ts` (parity length 16, batch 64, d_model 256,
d_input 64, 4 heads, 32 ticks, memory 16, deep NLMs with 16 hidden, 32/32 random-pairing
synchronisation, synapse depth 1, AdamW; forward, parity loss, backward, optimizer step, zero
grad), built with the PyTorch CTM of `tests/torch/ctm_torch.py` (written from the reference facts,
not the reference's code) in float32. Prints ms per step (wall clock) and process CPU ms per step.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "torch"))
from ctm_torch import CTM  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=5)
p.add_argument("--repeat", type=int, default=3)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--threads", type=int, default=torch.get_num_threads())
args = p.parse_args()
torch.set_num_threads(args.threads)

L, B = 16, 64
cfg = dict(
    iterations=32, d_model=256, d_input=64, heads=4, n_synch_out=32, n_synch_action=32, synapse_depth=1,
    memory_length=16, deep_nlms=True, memory_hidden_dims=16, backbone_type="parity_backbone",
    positional_embedding_type="custom-rotational-1d", out_dims=2 * L, prediction_reshaper=[L, 2],
    neuron_select_type="random-pairing",
)
torch.manual_seed(0)
model = CTM(cfg)
with torch.no_grad():
    for prm in model.parameters():
        prm.uniform_(-0.1, 0.1)
    model.trace_processor[0][0].T.fill_(1.0)
    model.trace_processor[0][2].T.fill_(1.0)
    model.decay_params_out.zero_()
    model.decay_params_action.zero_()
    for kind in ("out", "action"):
        getattr(model, f"{kind}_neuron_indices_left").copy_(torch.randint(0, 256, (32,)))
        getattr(model, f"{kind}_neuron_indices_right").copy_(torch.randint(0, 256, (32,)))
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)


def step():
    x = torch.randint(0, 2, (B, L)).float() * 2 - 1
    y = (torch.cumsum(x < 0, 1) % 2).long()  # cumulative parity
    preds, certs = model(x)  # (B, 2L, T), (B, 2, T)
    T = preds.shape[-1]
    logits = preds.reshape(B, L, 2, T)
    target = y.unsqueeze(-1).expand(B, L, T)
    loss_bt = F.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(1)  # (B, T)
    i_min = loss_bt.argmin(1)
    i_cert = certs[:, 1].argmax(1)
    ar = torch.arange(B)
    loss = (loss_bt[ar, i_min].mean() + loss_bt[ar, i_cert].mean()) / 2
    loss.backward()
    opt.step()
    opt.zero_grad()


for _ in range(args.warmup):
    step()
for _ in range(args.repeat):
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    wall = (time.perf_counter() - w0) / args.steps * 1e3
    cpu = (time.process_time() - c0) / args.steps * 1e3
    print(f"PyTorch {torch.__version__} ({args.threads} threads): {wall:.1f} ms/step wall, {cpu:.0f} ms CPU/step")
