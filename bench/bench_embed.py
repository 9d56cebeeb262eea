"""Embedding throughput on this machine, as ratios measured in the same run.

    python bench/bench_embed.py [--images 64] [--rounds 5] [--extractor NAME ...]

For each extractor: images/s of ``embed`` as the embed worker runs it once warm (defaults:
``precision="auto"``, and on the CPU the compiled network, which ``optimize="auto"`` switches to
after its first images; here ``warm_up`` compiles it up front and its seconds are printed), against
(a) the same extractor kept eager (``optimize="eager"``), (b) a naive per-image fp32 loop, the
img2vec way, and (c) the machine's own dense matmul roofline in bf16 and fp32, using the model's
FLOPs per image (counted on the eager fp32 network with torch's FlopCounterMode). ResNet50/VGG run
with random weights when theirs are absent: the FLOPs and speed are the same. The learned
``nft-ssl-v2`` (a 4-block CNN at 48 px, fp32, eager: there is nothing to compile or cast worth
the trouble at its size) is measured the same way, its "eager" column being itself.

The machine may be shared: the three ways take turns for ``--rounds`` rounds and each keeps its
best round; the roofline is the better of a measurement before and one after.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from nftvision.datasets import load_cryptopunks
from nftvision.extractors import get_extractor
from nftvision.extractors.cnn import CnnExtractor, Optimize, Precision
from nftvision.extractors.learned import NftSsl
from nftvision.preprocess import batch_square
from nftvision.ssl.model import INPUT_SIZE


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    fn()  # warm-up: oneDNN builds its kernels on first use
    return min(seconds(fn) for _ in range(repeat))


def matmul_flops(dtype: torch.dtype, n: int = 2048) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    with torch.inference_mode():
        took = best_of(lambda: [torch.mm(a, b) for _ in range(4)], repeat=10)  # noise: best of many
    return 4 * 2 * n**3 / took


def model_flops(ext: CnnExtractor) -> float:
    x = ext.to_input(ext.pixels([load_cryptopunks()[0].image]))
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        ext.features(x)
    return float(counter.get_total_flops())


def cnn(name: str, precision: Precision = "auto", optimize: Optimize = "auto") -> CnnExtractor:
    ext = get_extractor(name, allow_random=True, precision=precision, optimize=optimize)
    assert isinstance(ext, CnnExtractor)
    return ext


def naive_loop(name: str, images: Sequence[Image.Image]) -> Callable[[], None]:
    """One image at a time, fp32, contiguous NCHW, eager, no overlap: the img2vec way."""
    ext = cnn(name, precision="fp32", optimize="eager")
    ext.features.to(memory_format=torch.contiguous_format)

    def run() -> None:
        for im in images:
            x = ext.to_input(ext.pixels([im])).contiguous()
            with torch.no_grad():
                ext.features(x)

    return run


def rates(runs: dict[str, tuple[Callable[[], object], int]], rounds: int) -> dict[str, float]:
    """Best images/s of each run, taking turns round by round after one warm-up each."""
    for fn, _ in runs.values():
        fn()
    best = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for key, (fn, n) in runs.items():
            best[key] = max(best[key], n / seconds(fn))
    return best


@dataclass(frozen=True)
class Row:
    name: str
    dtype: str
    path: str
    warm_s: float
    rates: dict[str, float]  # images/s: fast, eager, naive
    flops: float  # per image


def measure(name: str, images: list[Image.Image], batch_size: int, rounds: int) -> Row:
    ext = cnn(name)
    warm = seconds(ext.warm_up)
    eager = cnn(name, optimize="eager")
    few = images[: max(8, len(images) // 8)]

    def embed(e: CnnExtractor) -> Callable[[], object]:
        return lambda: e.embed(images, batch_size=batch_size)

    got = rates(
        {
            "fast": (embed(ext), len(images)),
            "eager": (embed(eager), len(images)),
            "naive": (naive_loop(name, few), len(few)),
        },
        rounds,
    )
    dtype = str(ext.amp_dtype).replace("torch.", "") if ext.amp_dtype else "fp32"
    path = "compiled" if ext.compiled else "eager"
    return Row(name, dtype, path, warm, got, model_flops(ext))


def measure_learned(name: str, images: list[Image.Image], batch_size: int, rounds: int) -> Row:
    ext = get_extractor(name)
    assert isinstance(ext, NftSsl)
    few = images[: max(8, len(images) // 8)]

    def naive() -> None:
        for im in few:
            ext.embed([im])

    got = rates(
        {
            "fast": (lambda: ext.embed(images, batch_size=batch_size), len(images)),
            "naive": (naive, len(few)),
        },
        rounds,
    )
    got["eager"] = got["fast"]
    x = torch.from_numpy(batch_square(images[:1], INPUT_SIZE)).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        ext.model.grid(x) if ext.grid else ext.model(x)
    return Row(name, "fp32", "eager", 0.0, got, float(counter.get_total_flops()))


def rooflines() -> dict[torch.dtype, float]:
    return {dtype: matmul_flops(dtype) for dtype in (torch.bfloat16, torch.float32)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--extractor", action="append", default=None)
    args = ap.parse_args(argv)
    names = args.extractor or ["effnet-lite0-v1", "resnet50-v1:random", "nft-ssl-v2"]
    images = [p.image for p in load_cryptopunks()[: args.images]]

    before = rooflines()
    rows = [
        (measure_learned if name.startswith("nft-ssl") else measure)(
            name, images, args.batch_size, args.rounds
        )
        for name in names
    ]
    after = rooflines()  # the machine's peak is the better of the two
    roof_bf16, roof_fp32 = (max(before[d], after[d]) for d in (torch.bfloat16, torch.float32))
    print(
        f"threads {torch.get_num_threads()}  matmul roofline: bf16 {roof_bf16 / 1e9:.0f} GFLOP/s, "
        f"fp32 {roof_fp32 / 1e9:.0f} GFLOP/s"
    )
    print(
        f"{'extractor':<22} {'dtype':<9} {'path':<8} {'warm s':>6} {'img/s':>7} {'eager/s':>8} "
        f"{'naive/s':>8} {'×eager':>7} {'×naive':>7} {'GFLOP/img':>9} {'of bf16':>8} {'of fp32':>8}"
    )
    for r in rows:
        fast, eager, naive = r.rates["fast"], r.rates["eager"], r.rates["naive"]
        achieved = fast * r.flops
        print(
            f"{r.name:<22} {r.dtype:<9} {r.path:<8} {r.warm_s:>6.1f} {fast:>7.1f} {eager:>8.1f} "
            f"{naive:>8.1f} {fast / eager:>7.2f} {fast / naive:>7.2f} {r.flops / 1e9:>9.2f} "
            f"{achieved / roof_bf16:>8.2f} {achieved / roof_fp32:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
