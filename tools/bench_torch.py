#!/usr/bin/python3
"""tools/bench_torch.py: the torch side of tools/bench, one measurement per process.

    /usr/bin/python3 tools/bench_torch.py save big|tiny OUT    torch.save of the same state dict
    /usr/bin/python3 tools/bench_torch.py load FILE            torch.load(weights_only=True) + touch

Prints: seconds=<wall> rss_mib=<peak RSS above the RSS once the tensors were in memory> bytes=<size>
"""
import os
import resource
import sys
import time
from collections import OrderedDict

import torch


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make(case):
    count, numel = (256, (1 << 30) // 256 // 4) if case == "big" else (100000, 8)
    base = (torch.arange(count * numel, dtype=torch.float32) % 1000) * 0.25
    sd = OrderedDict()
    for i in range(count):
        # one storage per tensor, as in a real state dict (a slice would save the whole base storage)
        sd[f"layers.{i}.weight"] = base[i * numel:(i + 1) * numel].clone()
    del base
    return sd


def main():
    torch.set_num_threads(1)
    if sys.argv[1] == "save":
        sd = make(sys.argv[2])
        before = peak_mib()
        t0 = time.perf_counter()
        torch.save(sd, sys.argv[3])
        t1 = time.perf_counter()
        out = sys.argv[3]
    else:
        before = peak_mib()
        t0 = time.perf_counter()
        sd = torch.load(sys.argv[2], weights_only=True)
        s = 0
        for t in sd.values():
            s += int(t.view(-1)[::1024].sum().item() != 0)
        t1 = time.perf_counter()
        out = sys.argv[2]
    print(f"seconds={t1 - t0:.4f} rss_mib={peak_mib() - before:.1f} bytes={os.path.getsize(out)}")


if __name__ == "__main__":
    main()
