"""A PyTorch CTM and LSTM baseline written from the reference facts (ctm-reference.md §1.2, 1.3, 1.6),
for the interop test.

`tests/torch_interop_test.ts` saves a CTM built by this toolkit as safetensors (the reference's
parameter names), then runs

    python3 tests/torch/ctm_torch.py CONFIG.json WEIGHTS.safetensors INPUT.safetensors OUT.safetensors

This script builds the same model (`"model": "lstm"` or `"ff"` in CONFIG for the baselines) with torch
modules (nn.MultiheadAttention, nn.LSTM, nn.Conv2d, nn.BatchNorm2d, nn.LayerNorm, nn.GLU, nn.Linear,
nn.Embedding; ResNet, MNIST and ShallowWide backbones as the facts describe them), loads the weights with
`load_state_dict(strict=True)`, runs the forward in float64 in training mode, takes the gradient of `sum(predictions * probe)` and writes the
predictions, certainties, every parameter gradient (`grad.<name>`) and the batch-norm running
statistics after the forward (`buffer.<name>`) to OUT. Nothing here is imported from the reference.
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[8 + n + a : 8 + n + b], dtype=DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def write_safetensors(path, tensors):
    header, chunks, off = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().contiguous().to(torch.float64).numpy().tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


class SuperLinear(nn.Module):
    """N independent linear maps: out[b,n,h] = sum_m x[b,n,m] w1[m,h,n] + b1[0,n,h], then / T."""

    def __init__(self, n_in, n_out, n):
        super().__init__()
        self.w1 = nn.Parameter(torch.zeros(n_in, n_out, n))
        self.b1 = nn.Parameter(torch.zeros(1, n, n_out))
        self.T = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return (torch.einsum("bnm,mhn->bnh", x, self.w1) + self.b1).squeeze(-1) / self.T


class Squeeze(nn.Module):
    def forward(self, x):
        return x.squeeze(-1)


class ParityBackbone(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.embedding = nn.Embedding(2, d)

    def forward(self, x):
        return self.embedding((x == 1).long()).transpose(1, 2)


class Rotational1D(nn.Module):
    """Start vector [0, 1] rotated by linspace(0, 180 degrees, L), projected by Linear(2 -> D)."""

    def __init__(self, d):
        super().__init__()
        self.projection = nn.Linear(2, d)

    def forward(self, x):
        theta = torch.deg2rad(torch.linspace(0, 180, x.size(2), dtype=x.dtype))
        rot = torch.stack(
            [torch.stack([theta.cos(), -theta.sin()], -1), torch.stack([theta.sin(), theta.cos()], -1)], -2
        )  # (L, 2, 2) rotation matrices
        vec = rot @ torch.tensor([0.0, 1.0], dtype=x.dtype)
        return self.projection(vec).transpose(0, 1).unsqueeze(0)


class SynapseUNET(nn.Module):
    def __init__(self, d_in, d, depth):
        super().__init__()
        widths = [int(w) for w in np.linspace(d, 16, depth)]
        block = lambda i, o: nn.Sequential(nn.Dropout(0.0), nn.Linear(i, o), nn.LayerNorm(o), nn.SiLU())
        self.first_projection = nn.Sequential(nn.Linear(d_in, widths[0]), nn.LayerNorm(widths[0]), nn.SiLU())
        self.down_projections = nn.ModuleList([block(widths[i], widths[i + 1]) for i in range(depth - 1)])
        self.up_projections = nn.ModuleList([block(widths[i + 1], widths[i]) for i in range(depth - 1)])
        self.skip_lns = nn.ModuleList([nn.LayerNorm(widths[i]) for i in range(depth - 1)])

    def forward(self, x):
        outs = [self.first_projection(x)]
        for down in self.down_projections:
            outs.append(down(outs[-1]))
        u = outs[-1]
        for i in range(len(self.up_projections) - 1, -1, -1):
            u = self.skip_lns[i](self.up_projections[i](u) + outs[i])
        return u


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample(inp, planes, stride)

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.downsample = downsample(inp, 4 * planes, stride)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (self.downsample(x) if self.downsample is not None else x))


def downsample(inp, out, stride):
    if stride == 1 and inp == out:
        return None
    return nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))


class ResNetBackbone(nn.Module):
    """`resnetXX-k`: 3x3 stride-1 stem, BN, ReLU, max pool 3/2/1, then stages 1..k (no pool, no fc)."""

    def __init__(self, name):
        super().__init__()
        family, k = name[len("resnet") :].split("-")
        block = BasicBlock if family in ("18", "34") else Bottleneck
        counts = {"18": [2, 2, 2, 2], "34": [3, 4, 6, 3], "50": [3, 4, 6, 3], "101": [3, 4, 23, 3], "152": [3, 4, 36, 3]}
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.stages, inp = [], 64
        for i in range(int(k)):
            planes, blocks = 64 * 2**i, []
            for j in range(counts[family][i]):
                blocks.append(block(inp, planes, (1 if i == 0 else 2) if j == 0 else 1))
                inp = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.stages.append(f"layer{i + 1}")
        self.width = inp

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for name in self.stages:
            x = getattr(self, name)(x)
        return x


class MNISTBackbone(nn.Module):
    """[Conv2d(d, 3x3, pad 1) -> BatchNorm2d -> ReLU -> MaxPool2d(2, 2)] x 2."""

    def __init__(self, inp, d):
        super().__init__()
        block = lambda i: [nn.Conv2d(i, d, 3, 1, 1), nn.BatchNorm2d(d), nn.ReLU(), nn.MaxPool2d(2, 2)]
        self.layers = nn.Sequential(*block(inp), *block(d))

    def forward(self, x):
        return self.layers(x)


class ShallowWide(nn.Module):
    """Conv(4096, 3x3, stride 2) -> GLU(1) -> BN(2048) -> Conv(2048->4096, 3x3, groups 32) -> GLU(1) -> BN."""

    def __init__(self, inp):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(inp, 4096, 3, 2, 1), nn.GLU(1), nn.BatchNorm2d(2048),
            nn.Conv2d(2048, 4096, 3, 1, 1, groups=32), nn.GLU(1), nn.BatchNorm2d(2048),
        )

    def forward(self, x):
        return self.layers(x)


def build_featuriser(m, c):
    """The backbone, positional embedding and kv_proj shared by the CTM and the LSTM baseline."""
    d_in = c["d_input"]
    if c["backbone_type"] == "parity_backbone":
        m.backbone, d_backbone = ParityBackbone(d_in), d_in
    elif c["backbone_type"] == "mnist":
        m.backbone, d_backbone = MNISTBackbone(c["in_channels"], d_in), d_in
    elif c["backbone_type"] == "shallow-wide":
        m.backbone, d_backbone = ShallowWide(c["in_channels"]), 2048
    elif c["backbone_type"].startswith("resnet"):
        m.initial_rgb = nn.Conv2d(c["in_channels"], 3, 1)
        m.backbone = ResNetBackbone(c["backbone_type"])
        d_backbone = m.backbone.width
    else:
        m.backbone, d_backbone = nn.Identity(), c["d_backbone"]
    if c["positional_embedding_type"] == "custom-rotational-1d":
        m.positional_embedding = Rotational1D(d_backbone)
    else:
        m.positional_embedding = None
    m.kv_proj = nn.Sequential(nn.Linear(d_backbone, d_in), nn.LayerNorm(d_in))


def featurise(m, x):
    f = m.backbone(m.initial_rgb(x) if hasattr(m, "initial_rgb") else x)
    pe = m.positional_embedding(f) if m.positional_embedding is not None else 0
    return m.kv_proj((f + pe).flatten(2).transpose(1, 2))


def certainty(pred, reshaper):
    """[normalised entropy, 1 - normalised entropy] of the softmax over the last reshaped dim."""
    p = pred.reshape([pred.shape[0]] + reshaper)
    logp = torch.log_softmax(p, -1)
    ne = -(logp.exp() * logp).sum(-1) / math.log(p.shape[-1])
    if ne.dim() > 1:
        ne = ne.flatten(1).mean(-1)
    return torch.stack([ne, 1 - ne], -1)


class CTM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        D, d_in, M, H = c["d_model"], c["d_input"], c["memory_length"], c["memory_hidden_dims"]
        sel = c["neuron_select_type"]
        size = lambda n: n if sel == "random-pairing" else n * (n + 1) // 2
        self.s_out, self.s_act = size(c["n_synch_out"]), size(c["n_synch_action"])
        build_featuriser(self, c)
        self.q_proj = nn.Linear(self.s_act, d_in)
        self.attention = nn.MultiheadAttention(d_in, c["heads"], batch_first=True)
        if c["synapse_depth"] == 1:
            self.synapses = nn.Sequential(nn.Dropout(0.0), nn.Linear(d_in + D, 2 * D), nn.GLU(-1), nn.LayerNorm(D))
        else:
            self.synapses = SynapseUNET(d_in + D, D, c["synapse_depth"])
        if c["deep_nlms"]:
            layers = [SuperLinear(M, 2 * H, D), nn.GLU(-1), SuperLinear(H, 2, D), nn.GLU(-1), Squeeze()]
        else:
            layers = [SuperLinear(M, 2, D), nn.GLU(-1), Squeeze()]
        self.trace_processor = nn.Sequential(nn.Sequential(*layers))
        self.start_activated_state = nn.Parameter(torch.zeros(D))
        self.start_trace = nn.Parameter(torch.zeros(D, M))
        self.decay_params_out = nn.Parameter(torch.zeros(self.s_out))
        self.decay_params_action = nn.Parameter(torch.zeros(self.s_act))
        for kind, n in (("out", c["n_synch_out"]), ("action", c["n_synch_action"])):
            self.register_buffer(f"{kind}_neuron_indices_left", torch.zeros(n, dtype=torch.long))
            self.register_buffer(f"{kind}_neuron_indices_right", torch.zeros(n, dtype=torch.long))
        self.output_projector = nn.Sequential(nn.Linear(self.s_out, c["out_dims"]))

    def pairwise(self, z, kind):
        sel, D = self.c["neuron_select_type"], self.c["d_model"]
        left = getattr(self, f"{kind}_neuron_indices_left")
        right = getattr(self, f"{kind}_neuron_indices_right")
        if sel == "random-pairing":
            return z[:, left] * z[:, right]
        if sel == "first-last":
            n = len(left)
            zl = zr = z[:, :n] if kind == "out" else z[:, D - n :]
        else:
            zl, zr = z[:, left], z[:, right]
        n = zl.shape[1]
        i, j = torch.triu_indices(n, n)
        return (zl[:, :, None] * zr[:, None, :])[:, i, j]

    def sync(self, z, alpha, beta, r, kind):
        pp = self.pairwise(z, kind)
        if alpha is None:
            alpha, beta = pp, torch.ones_like(pp)
        else:
            alpha, beta = r * alpha + pp, r * beta + 1
        return alpha / torch.sqrt(beta), alpha, beta

    def forward(self, x):
        c, B = self.c, x.shape[0]
        kv = featurise(self, x)
        trace = self.start_trace.unsqueeze(0).expand(B, -1, -1)
        z = self.start_activated_state.unsqueeze(0).expand(B, -1)
        with torch.no_grad():
            self.decay_params_action.data.clamp_(0, 15)
            self.decay_params_out.data.clamp_(0, 15)
        r_act = torch.exp(-self.decay_params_action).unsqueeze(0).repeat(B, 1)
        r_out = torch.exp(-self.decay_params_out).unsqueeze(0).repeat(B, 1)
        _, a_out, b_out = self.sync(z, None, None, r_out, "out")
        a_act = b_act = None
        preds, certs = [], []
        for _ in range(c["iterations"]):
            s_act, a_act, b_act = self.sync(z, a_act, b_act, r_act, "action")
            q = self.q_proj(s_act).unsqueeze(1)
            attn, _ = self.attention(q, kv, kv, need_weights=True, average_attn_weights=False)
            pre = torch.cat([attn.squeeze(1), z], -1)
            a = self.synapses(pre)
            trace = torch.cat([trace[:, :, 1:], a.unsqueeze(-1)], -1)
            z = self.trace_processor(trace)
            s_out, a_out, b_out = self.sync(z, a_out, b_out, r_out, "out")
            pred = self.output_projector(s_out)
            preds.append(pred)
            certs.append(certainty(pred, c["prediction_reshaper"]).detach())
        return torch.stack(preds, -1), torch.stack(certs, -1)


class LSTMBaseline(nn.Module):
    """nn.LSTM stepped once per tick on the attention output; the query comes from the top hidden state."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        D, d_in, layers = c["d_model"], c["d_input"], c["num_layers"]
        build_featuriser(self, c)
        self.lstm = nn.LSTM(d_in, D, layers, batch_first=True)
        self.q_proj = nn.Linear(D, d_in)
        self.attention = nn.MultiheadAttention(d_in, c["heads"], batch_first=True)
        self.output_projector = nn.Sequential(nn.Linear(D, c["out_dims"]))
        self.start_hidden_state = nn.Parameter(torch.zeros(layers, D))
        self.start_cell_state = nn.Parameter(torch.zeros(layers, D))

    def forward(self, x):
        c, B = self.c, x.shape[0]
        kv = featurise(self, x)
        h = self.start_hidden_state.unsqueeze(1).expand(-1, B, -1).contiguous()
        cell = self.start_cell_state.unsqueeze(1).expand(-1, B, -1).contiguous()
        preds, certs = [], []
        for _ in range(c["iterations"]):
            q = self.q_proj(h[-1]).unsqueeze(1)
            attn, _ = self.attention(q, kv, kv, need_weights=True, average_attn_weights=False)
            _, (h, cell) = self.lstm(attn, (h, cell))
            pred = self.output_projector(h[-1])
            preds.append(pred)
            certs.append(certainty(pred, c["prediction_reshaper"]).detach())
        return torch.stack(preds, -1), torch.stack(certs, -1)


class FFBaseline(nn.Module):
    """initial_rgb, a truncated ResNet, then pool, squeeze x2, Linear(d_model), ReLU, Dropout, Linear."""

    def __init__(self, c):
        super().__init__()
        self.initial_rgb = nn.Conv2d(c["in_channels"], 3, 1)
        self.backbone = ResNetBackbone(c["backbone_type"])
        self.output_projector = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), Squeeze(), Squeeze(), nn.Linear(self.backbone.width, c["d_model"]),
            nn.ReLU(), nn.Dropout(0.0), nn.Linear(c["d_model"], c["out_dims"]),
        )

    def forward(self, x):
        return self.output_projector(self.backbone(self.initial_rgb(x))), None


MODELS = {"ctm": None, "lstm": LSTMBaseline, "ff": FFBaseline}


def main():
    cfg_path, weights_path, input_path, out_path = sys.argv[1:5]
    with open(cfg_path) as f:
        cfg = json.load(f)
    torch.manual_seed(0)
    model = (MODELS.get(cfg.get("model", "ctm")) or CTM)(cfg).double()
    weights = read_safetensors(weights_path)
    state = {k: (v.double() if v.is_floating_point() else v.long()) for k, v in weights.items()}
    model.load_state_dict(state, strict=True)
    model.train(not cfg.get("eval", False))
    io = read_safetensors(input_path)
    preds, certs = model(io["x"].double())
    (preds * io["probe"].double()).sum().backward()
    out = {"predictions": preds} if certs is None else {"predictions": preds, "certainties": certs}
    for name, p in model.named_parameters():
        out[f"grad.{name}"] = p.grad if p.grad is not None else torch.zeros_like(p)
    for name, b in model.named_buffers():  # batch-norm running statistics after the forward
        if "running" in name:
            out[f"buffer.{name}"] = b
    write_safetensors(out_path, out)


if __name__ == "__main__":
    main()
