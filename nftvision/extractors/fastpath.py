"""The CPU fast path of a CNN extractor: BatchNorm folded in fp32, weights cast once, compiled.

:class:`CompiledFeatures` runs a copy of the feature network through ``torch.compile`` (inductor
with frozen weights, so oneDNN gets prepacked weights and fuses conv + bias + activation), one
static graph per batch size. Before compiling, every BatchNorm that directly follows a conv is
folded into that conv's weights in fp32 (:func:`fold_batchnorm`), and only then are the weights
cast to the half type: folding after the cast would round the folded weights twice. The copy
and the compiled graphs (which hold their own prepacked weights) cost memory beside the eager
network: a few times the weights, which matters for VGG (0.5 GB in fp32) only.

Any failure to compile or run (no C++ compiler, an unwritable cache, an op inductor cannot lower)
is the caller's to catch: :class:`~nftvision.extractors.cnn.CnnExtractor` falls back to eager.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

log = logging.getLogger(__name__)


class _ConvBnTracer(fx.Tracer):
    """Keeps convs and BatchNorms (timm's subclasses included) whole, so they can be paired."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, nn.Conv2d | nn.BatchNorm2d) or super().is_leaf_module(
            m, module_qualified_name
        )


def _after_norm(bn: nn.BatchNorm2d) -> nn.Module | None:
    """What is left of ``bn`` once its normalisation is folded away; None if it cannot be."""
    if bn.training or bn.running_mean is None or bn.running_var is None:
        return None
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    try:  # timm's BatchNormAct2d: batch_norm → drop → act
        from timm.layers import BatchNormAct2d
    except ImportError:  # pragma: no cover - timm is a dependency
        return None
    if type(bn) is BatchNormAct2d:
        return nn.Sequential(bn.drop, bn.act)
    return None


def _set_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    parent, _, name = target.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every eval-mode BatchNorm whose only input is a conv into that conv, in place.

    Returns how many were folded; a model torch.fx cannot trace is left as it is (0).
    """
    try:
        graph = _ConvBnTracer().trace(model)
    except Exception as exc:  # data-dependent control flow and the like: inductor folds later
        log.debug("not folding BatchNorm: %s", exc)
        return 0
    folded = 0
    for node in graph.nodes:
        if node.op != "call_module" or len(node.users) != 1:
            continue
        conv = model.get_submodule(node.target)
        (user,) = node.users
        if not isinstance(conv, nn.Conv2d) or user.op != "call_module":
            continue
        bn = model.get_submodule(user.target)
        rest = _after_norm(bn) if isinstance(bn, nn.BatchNorm2d) else None
        if rest is None or not isinstance(bn, nn.BatchNorm2d):
            continue
        mean, var = bn.running_mean, bn.running_var
        assert mean is not None and var is not None  # _after_norm checked
        conv.weight, conv.bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, mean, var, bn.eps, bn.weight, bn.bias
        )
        _set_submodule(model, user.target, rest)
        folded += 1
    return folded


class _CastIn(nn.Module):
    """Runs ``inner`` in ``dtype`` and hands back fp32, so the casts compile into the graph."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.to(self.dtype)).float()


def prepare(features: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """An inference copy of ``features``: BatchNorm folded in fp32, then weights in ``dtype``
    (None: fp32), channels_last, taking and returning fp32."""
    model = copy.deepcopy(features).float().eval()
    with torch.no_grad():
        fold_batchnorm(model)
    model = model.to(dtype or torch.float32).to(memory_format=torch.channels_last)
    return _CastIn(model, dtype or torch.float32)


class CompiledFeatures:
    """``features`` compiled for inference; one static graph per batch size it sees.

    Call it under ``torch.inference_mode`` (frozen weights need autograd off); it raises whatever
    compiling or running raised.
    """

    def __init__(self, features: nn.Module, dtype: torch.dtype | None) -> None:
        self.module = prepare(features, dtype)
        # dynamic=False: a new batch size compiles a new static graph instead of one symbolic
        # graph, which inductor builds far more slowly and runs slower on the CPU. Every
        # extractor's graphs count against dynamo's recompile limit for _CastIn.forward (8):
        # beyond four compiled extractors of two batch sizes each in one process, dynamo runs
        # the extra ones eagerly (same vectors, eager speed).
        self._compiled: Callable[[torch.Tensor], torch.Tensor] = torch.compile(
            self.module, dynamic=False
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch._inductor.config as inductor_config

        # Freezing is read when dynamo traces (first call, each new batch size), from the global
        # config: torch.compile(options=...) does not reach that check.
        with inductor_config.patch(freezing=True):
            return self._compiled(x)
