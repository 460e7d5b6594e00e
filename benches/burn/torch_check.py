#!/usr/bin/env python3
"""The PyTorch reference's side of `ssvae-burn-bench --check`: bench.py's SS_D / SS_CNN (imported
from benches/pytorch/bench.py), its parameter count, and its losses over N training steps on the
same kind of random data, printed in the same format, so the two can be compared by eye (the
random streams differ, so only the scale and the trend are comparable).

    python3 benches/burn/torch_check.py --model ss-dense --steps 50
    python3 benches/burn/torch_check.py --model ss-cnn --batch 16 --steps 50
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pytorch"))
from bench import SSCnn, SSDense  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ss-dense", choices=["ss-dense", "ss-cnn"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--steps", type=int, default=50)
    a = p.parse_args()
    torch.manual_seed(0)
    hidden = a.hidden if a.model == "ss-dense" else 512
    model = SSDense(h=hidden) if a.model == "ss-dense" else SSCnn(h=hidden)
    opt = torch.optim.RMSprop(model.parameters(), lr=5e-4, alpha=0.9, momentum=0.9, eps=1e-7)
    print(f"{a.model} hidden {hidden} batch {a.batch}: {sum(p.numel() for p in model.parameters())} parameters")
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, 256, (60000, 784), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (60000,), generator=g)
    labeled = torch.randperm(60000, generator=g)[:1000]
    perm, pos, n_lab = torch.randperm(60000, generator=g), 0, a.batch // 2
    sums = [0.0] * 4
    for s in range(1, a.steps + 1):
        unl = perm[pos:pos + a.batch - n_lab]
        pos += a.batch - n_lab
        idx = torch.cat([labeled[torch.randint(1000, (n_lab,), generator=g)], unl])
        x, y = data[idx].float() / 255.0, labels[idx[:n_lab]]
        out, mu, lv, logits = model(x)
        rec = F.binary_cross_entropy_with_logits(out, x, reduction="sum") / a.batch
        ce = F.cross_entropy(logits[:n_lab], y)
        kl = -0.5 * torch.sum(1 + lv - mu * mu - lv.exp()) / a.batch
        loss = rec + kl + 100.0 * ce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sums = [acc + v.item() for acc, v in zip(sums, (loss, rec, kl, ce))]
        if s % 10 == 0 or s == a.steps:  # means over windows of 10 steps
            k = 10 if s % 10 == 0 else s % 10
            m = [v / k for v in sums]
            print(f"steps {s - k + 1:4}-{s:<4} mean loss {m[0]:9.3f}  rec {m[1]:8.3f}  kl {m[2]:6.3f}  ce {m[3]:6.4f}")
            sums = [0.0] * 4


if __name__ == "__main__":
    main()
