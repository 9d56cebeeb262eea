"""Embedding throughput on this machine, as ratios measured in the same run.

    python bench/bench_embed.py [--images 64] [--extractor NAME ...]

For each extractor: images/s of ``embed`` (batched, channels_last, autocast as chosen by
``precision="auto"``) against (a) a naive per-image fp32 loop, the img2vec way, and (b) the
machine's own dense matmul roofline in bf16 and fp32, using the model's FLOPs per image (counted
with torch's FlopCounterMode). ResNet50/VGG run with random weights when theirs are absent: the
FLOPs and speed are the same.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from nftvision.datasets import load_cryptopunks
from nftvision.extractors import get_extractor
from nftvision.extractors.cnn import CnnExtractor


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    fn()  # warm-up: oneDNN builds its kernels on first use
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_flops(dtype: torch.dtype, n: int = 2048) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    with torch.inference_mode():
        took = best_of(lambda: [torch.mm(a, b) for _ in range(4)])
    return 4 * 2 * n**3 / took


def model_flops(ext: CnnExtractor) -> float:
    x = ext.to_input(ext.pixels([load_cryptopunks()[0].image]))
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        ext.features(x)
    return float(counter.get_total_flops())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--extractor", action="append", default=None)
    args = ap.parse_args(argv)
    names = args.extractor or ["effnet-lite0-v1", "resnet50-v1:random"]
    images = [p.image for p in load_cryptopunks()[: args.images]]

    roof_bf16, roof_fp32 = matmul_flops(torch.bfloat16), matmul_flops(torch.float32)
    print(
        f"threads {torch.get_num_threads()}  matmul roofline: bf16 {roof_bf16 / 1e9:.0f} GFLOP/s, "
        f"fp32 {roof_fp32 / 1e9:.0f} GFLOP/s"
    )
    print(
        f"{'extractor':<22} {'autocast':<9} {'img/s':>7} {'naive/s':>8} {'×naive':>7} "
        f"{'GFLOP/img':>9} {'of bf16':>8} {'of fp32':>8}"
    )
    for name in names:
        ext = get_extractor(name, allow_random=True)
        assert isinstance(ext, CnnExtractor)
        fast = len(images) / best_of(lambda e=ext: e.embed(images, batch_size=args.batch_size))
        naive_ext = get_extractor(name, allow_random=True, precision="fp32")
        assert isinstance(naive_ext, CnnExtractor)
        few = images[: max(8, len(images) // 8)]
        naive_ext.features.to(memory_format=torch.contiguous_format)

        def naive(e: CnnExtractor = naive_ext, few: list = few) -> None:
            for im in few:  # one image at a time, fp32, contiguous NCHW, no overlap
                x = e.to_input(e.pixels([im])).contiguous()
                with torch.no_grad():
                    e.features(x)

        slow = len(few) / best_of(naive, repeat=1)
        flops = model_flops(ext)
        achieved = fast * flops
        dtype = str(ext.amp_dtype).replace("torch.", "") if ext.amp_dtype else "fp32"
        print(
            f"{name:<22} {dtype:<9} {fast:>7.1f} {slow:>8.1f} {fast / slow:>7.2f} "
            f"{flops / 1e9:>9.2f} {achieved / roof_bf16:>8.2f} {achieved / roof_fp32:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
