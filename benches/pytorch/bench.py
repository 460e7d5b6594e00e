#!/usr/bin/env python3
"""PyTorch reference of ssvae's SS_D, SS_CNN, SS_RNN and M2 (dense) training steps, timed the way
`ssvae bench train` times them.

Same model (encoder 784-H-H relu; heads mu(2), logvar(2) with logvar = 20 tanh(raw / 20),
pi(10); decoder concat(z, softmax(pi)) -> H-H relu -> 784 logits), same losses (Bernoulli NLL
summed over pixels and KL, both averaged over the batch; cross-entropy on the labeled half
averaged over labeled rows, times alpha = 100), same optimizer (RMSprop lr 5e-4, alpha 0.9,
momentum 0.9, eps 1e-7), same data path (a resident uint8 training set of 60000 random images,
a batch gathered by index and scaled to [0, 1] each step; half the rows labeled, drawn with
replacement from 1000 labeled samples, half from a shuffled pass). Eager mode, no compilation.

    python3 benches/pytorch/bench.py --device cpu --batch-sizes 32,128,512,2048 --hidden-sizes 256,512,1024,2048,4096
    python3 benches/pytorch/bench.py --model ss-cnn --device cpu --batch-sizes 128
    python3 benches/pytorch/bench.py --model ss-rnn --device cpu --batch-sizes 128
    python3 benches/pytorch/bench.py --model m2-dense --device cpu --batch-sizes 128

SS_CNN is ssvae's (the paper's Table 14): three 3x3 convolutions (64 channels, strides 1, 1, 2)
without bias, each + batch norm (momentum 0.1, eps 1e-3) + relu; dense 512 without bias + batch
norm + relu + dropout 0.5; heads as above; decoder dense 12544 + batch norm + relu + dropout,
three 3x3 transposed convolutions (strides 1, 1, 2) + batch norm + relu, a 1x1 transposed
convolution to one channel. PyTorch runs it NCHW (its native layout), ssvae NHWC.

SS_RNN is ssvae's (the paper's Table 15) on random UCI-HAR-sized windows (7352 x 128 steps x 6
channels, 6 classes): time-distributed dense 40 relu, LSTM 40, time-distributed dense 30 relu,
per-step heads mu(2), logvar(2), pi(6); decoder per step concat(z_t, pi_t) -> dense 30 relu,
LSTM 40, dense 40 relu, Gaussian mean and variance (softplus + 1e-4) per channel. As ssvae's
RNN (`LossNorm::Mean`): the Gaussian NLL is a mean over steps x channels and the KL a mean over
steps x latent, both averaged over windows; CE per step on the labeled windows (mean over
labeled windows and steps).

M2 (dense) is ssvae's `m2-dense` (src/model/m2.rs, Kingma et al.'s M2 with y summed out):
encoder 784-H-H relu, q(y|x) = pi head (10); every row is expanded to its 10 (row, class)
pairs (row r * 10 + k), q(z|x,y) = dense H relu on concat(h, one-hot(k)) -> mu(2), logvar(2)
(bounded as above); decoder concat(z, one-hot(k)) -> H-H relu -> 784 logits. Loss per batch of
B rows: 1/B sum_r sum_k w[r,k] (BCE(x_r | k) + KL_z(r,k)) with w = q(y|x) on unlabeled rows
and one-hot(y) on labeled ones, + 1/B sum_r [unlabeled: KL(q(y|x_r) || uniform); labeled:
-log p(y_r) = log 10], + alpha * mean CE over labeled rows. The step runs forward and backward
over B * 10 decoder rows.

Prints one JSON line per case. Not a test dependency: install torch in a virtual environment.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SSDense(nn.Module):
    def __init__(self, d=784, h=1024, latent=2, classes=10):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.mu = nn.Linear(h, latent)
        self.logvar = nn.Linear(h, latent)
        self.pi = nn.Linear(h, classes)
        self.dec = nn.Sequential(nn.Linear(latent + classes, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, d))

    def forward(self, x):
        h = self.enc(x)
        mu = self.mu(h)
        lv = 20.0 * torch.tanh(self.logvar(h) / 20.0)
        logits = self.pi(h)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        out = self.dec(torch.cat([z, F.softmax(logits, dim=1)], dim=1))
        return out, mu, lv, logits


def conv_bn(cin, cout, stride, transposed=False):
    if transposed:
        conv = nn.ConvTranspose2d(cin, cout, 3, stride, padding=1, output_padding=stride - 1, bias=False)
    else:
        conv = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
    return [conv, nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1), nn.ReLU()]


class SSCnn(nn.Module):
    def __init__(self, ch=64, h=512, latent=2, classes=10):
        super().__init__()
        self.ch = ch
        self.enc = nn.Sequential(*conv_bn(1, ch, 1), *conv_bn(ch, ch, 1), *conv_bn(ch, ch, 2), nn.Flatten(),
                                 nn.Linear(14 * 14 * ch, h, bias=False), nn.BatchNorm1d(h, eps=1e-3, momentum=0.1), nn.ReLU(), nn.Dropout(0.5))
        self.mu = nn.Linear(h, latent)
        self.logvar = nn.Linear(h, latent)
        self.pi = nn.Linear(h, classes)
        self.dec_map = nn.Sequential(nn.Linear(latent + classes, 14 * 14 * ch, bias=False), nn.BatchNorm1d(14 * 14 * ch, eps=1e-3, momentum=0.1), nn.ReLU(), nn.Dropout(0.5))
        self.dec = nn.Sequential(*conv_bn(ch, ch, 1, True), *conv_bn(ch, ch, 1, True), *conv_bn(ch, ch, 2, True), nn.ConvTranspose2d(ch, 1, 1))

    def forward(self, x):
        h = self.enc(x.view(-1, 1, 28, 28))
        mu = self.mu(h)
        lv = 20.0 * torch.tanh(self.logvar(h) / 20.0)
        logits = self.pi(h)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        m = self.dec_map(torch.cat([z, F.softmax(logits, dim=1)], dim=1)).view(-1, self.ch, 14, 14)
        return self.dec(m).view(x.shape[0], -1), mu, lv, logits


class SSRnn(nn.Module):
    def __init__(self, channels=6, classes=6, latent=2):
        super().__init__()
        self.d1 = nn.Linear(channels, 40)
        self.lstm = nn.LSTM(40, 40, batch_first=True)
        self.d2 = nn.Linear(40, 30)
        self.mu, self.logvar, self.pi = nn.Linear(30, latent), nn.Linear(30, latent), nn.Linear(30, classes)
        self.e1 = nn.Linear(latent + classes, 30)
        self.dlstm = nn.LSTM(30, 40, batch_first=True)
        self.e2 = nn.Linear(40, 40)
        self.mean, self.var = nn.Linear(40, channels), nn.Linear(40, channels)

    def forward(self, x):
        h = F.relu(self.d2(self.lstm(F.relu(self.d1(x)))[0]))
        mu = self.mu(h)
        lv = 20.0 * torch.tanh(self.logvar(h) / 20.0)
        logits = self.pi(h)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        g = F.relu(self.e2(self.dlstm(F.relu(self.e1(torch.cat([z, F.softmax(logits, dim=-1)], dim=-1))))[0]))
        return self.mean(g), F.softplus(self.var(g)) + 1e-4, mu, lv, logits


class M2Dense(nn.Module):
    def __init__(self, d=784, h=1024, latent=2, classes=10):
        super().__init__()
        self.k = classes
        self.enc = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.pi = nn.Linear(h, classes)
        self.zenc = nn.Linear(h + classes, h)
        self.mu = nn.Linear(h, latent)
        self.logvar = nn.Linear(h, latent)
        self.dec = nn.Sequential(nn.Linear(latent + classes, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, d))

    def forward(self, x):
        b, k = x.shape[0], self.k
        h = self.enc(x)
        logits = self.pi(h)
        onehot = torch.eye(k, device=x.device).repeat(b, 1)  # row r * k + j is one-hot(j)
        zh = F.relu(self.zenc(torch.cat([h.repeat_interleave(k, dim=0), onehot], dim=1)))
        mu = self.mu(zh)
        lv = 20.0 * torch.tanh(self.logvar(zh) / 20.0)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        out = self.dec(torch.cat([z, onehot], dim=1))
        return out, mu, lv, logits


def m2_loss(model, x, y, n_lab, alpha):
    """The M2 objective of src/model/m2.rs (uniform p(y)); y labels the first n_lab rows."""
    b, k = x.shape[0], model.k
    out, mu, lv, logits = model(x)
    rec = F.binary_cross_entropy_with_logits(out, x.repeat_interleave(k, dim=0), reduction="none").sum(1)
    kl = -0.5 * torch.sum(1 + lv - mu * mu - lv.exp(), dim=1)
    q = F.softmax(logits, dim=1)
    w = torch.cat([F.one_hot(y, k).float(), q[n_lab:]])
    pairs = (w.reshape(-1) * (rec + kl)).sum() / b
    log_prior = torch.full((k,), -torch.log(torch.tensor(float(k))).item(), device=x.device)
    logq = F.log_softmax(logits[n_lab:], dim=1)
    kl_y = ((q[n_lab:] * (logq - log_prior)).sum() - log_prior[y].sum()) / b
    return pairs + kl_y + alpha * F.cross_entropy(logits[:n_lab], y)


def run_case(device, model_name, batch, hidden, min_seconds, warmup, data, labels, labeled):
    torch.manual_seed(0)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    model = {"ss-dense": lambda: SSDense(h=hidden), "ss-cnn": lambda: SSCnn(h=hidden), "ss-rnn": SSRnn, "m2-dense": lambda: M2Dense(h=hidden)}[model_name]().to(device)
    opt = torch.optim.RMSprop(model.parameters(), lr=5e-4, alpha=0.9, momentum=0.9, eps=1e-7)
    n = data.shape[0]
    n_lab = batch // 2
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(n, generator=gen)
    pos = 0
    alpha = 100.0

    def step():
        nonlocal perm, pos
        if pos + (batch - n_lab) > n:
            perm = torch.randperm(n, generator=gen)
            pos = 0
        unl = perm[pos:pos + batch - n_lab]
        pos += batch - n_lab
        lab = labeled[torch.randint(len(labeled), (n_lab,), generator=gen)]
        idx = torch.cat([lab, unl]).to(device)
        y = labels[idx[:n_lab]]
        if model_name == "m2-dense":
            loss = m2_loss(model, data[idx].float() / 255.0, y, n_lab, alpha)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss
        if model_name == "ss-rnn":
            x = data[idx]
            mean, var, mu, lv, logits = model(x)
            # LossNorm::Mean: NLL a mean over steps x channels, KL over steps x latent
            rec = F.gaussian_nll_loss(mean, x, var, full=True, reduction="sum") / (batch * x.shape[1] * x.shape[2])
            ce = F.cross_entropy(logits[:n_lab].reshape(-1, logits.shape[-1]), y.repeat_interleave(logits.shape[1]))
            kl = -0.5 * torch.sum(1 + lv - mu * mu - lv.exp()) / (batch * mu.shape[1] * mu.shape[2])
        else:
            x = data[idx].float() / 255.0
            out, mu, lv, logits = model(x)
            rec = F.binary_cross_entropy_with_logits(out, x, reduction="sum") / batch
            ce = F.cross_entropy(logits[:n_lab], y)
            kl = -0.5 * torch.sum(1 + lv - mu * mu - lv.exp()) / batch
        loss = rec + kl + alpha * ce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    steps = 0
    while steps == 0 or time.perf_counter() - start < min_seconds:
        loss = step()
        steps += 1
        if steps % 100 == 0:
            loss.item()  # read the loss back as the training loop does
    sync()
    secs = time.perf_counter() - start
    return {
        "bench": "train", "implementation": "pytorch", "model": model_name, "backend": device,
        "adapter": torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__, "batch": batch, "hidden": hidden, "steps": steps,
        "ms_per_step": secs * 1e3 / steps, "samples_per_s": steps * batch / secs,
        # peak memory next to the throughput: on CUDA what this case allocated at most; on the
        # CPU the process's peak RSS so far (interpreter and libraries included, and earlier
        # cases of the same process: run one case a process to read it per case)
        "peak_mib": (torch.cuda.max_memory_allocated() if device.startswith("cuda") else peak_rss_bytes()) / 2**20,
        "peak_kind": "cuda max_memory_allocated" if device.startswith("cuda") else "process max RSS",
    }


def peak_rss_bytes():
    import resource
    # ru_maxrss is in KiB on Linux (bytes on macOS)
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--model", default="ss-dense", choices=["ss-dense", "ss-cnn", "ss-rnn", "m2-dense"])
    p.add_argument("--batch-sizes", default="32,128,512,2048")
    p.add_argument("--hidden-sizes", default="256,512,1024,2048,4096")
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    g = torch.Generator().manual_seed(1)
    if a.model == "ss-rnn":
        data = (torch.rand((7352, 128, 6), generator=g) * 3.4 - 1.7).to(a.device)
        labels = torch.randint(0, 6, (7352,), generator=g).to(a.device)
    else:
        data = torch.randint(0, 256, (60000, 784), dtype=torch.uint8, generator=g).to(a.device)
        labels = torch.randint(0, 10, (60000,), generator=g).to(a.device)
    labeled = torch.randperm(data.shape[0], generator=g)[:1000]
    batches = [int(b) for b in a.batch_sizes.split(",") if b]
    hiddens = [int(h) for h in a.hidden_sizes.split(",") if h]
    if a.model in ("ss-dense", "m2-dense"):
        cases = [(b, 1024) for b in batches] + [(128, h) for h in hiddens if not (h == 1024 and 128 in batches)]
    else:
        cases = [(b, 512 if a.model == "ss-cnn" else 40) for b in batches]  # no width scaling
    for b, h in cases:
        print(json.dumps(run_case(a.device, a.model, b, h, a.min_seconds, a.warmup, data, labels, labeled)), flush=True)


if __name__ == "__main__":
    main()
