"""PyTorch reference modules (ST-GCN, CTR-GCN) with upstream's exact state_dict keys.

Written from the specification, not copied from upstream; they are the torch side of parity tests and of speed
comparisons. torch is imported only in this package (and in tests that skip without it), never by ``tasar_jax``.
"""

from __future__ import annotations

from tasar_jax.converters import torch_io
from tasar_jax.data import layouts

ARCHITECTURES = ("stgcn", "ctrgcn")


def _dataset_kwargs(arch: str, dataset: str) -> dict:
    spec = layouts.get_dataset(dataset)
    if arch == "stgcn":
        return dict(num_classes=spec.num_classes, graph_layout=spec.graph_layout)
    return dict(num_classes=spec.num_classes, num_persons=spec.num_persons)


def build(arch: str, dataset: str, **overrides):
    """The upstream-size torch module of ``arch`` for ``dataset`` (``width=…`` etc. override), in eval mode."""
    if arch == "stgcn":
        from tasar_jax.converters.reference.stgcn import STGCN as cls
    elif arch == "ctrgcn":
        from tasar_jax.converters.reference.ctrgcn import CTRGCN as cls
    else:
        raise ValueError(f"no torch reference for {arch!r}; available: {', '.join(ARCHITECTURES)}")
    module = cls(**{**_dataset_kwargs(arch, dataset), **overrides})
    return module.eval()


def load_state_dict(module, state_dict):
    """Strict load of a torch state_dict; missing/unexpected keys or wrong shapes raise ``CheckpointError``."""
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        raise torch_io.CheckpointError(str(err)) from err
    return module


def load(arch: str, dataset: str, path, **overrides):
    """``build`` + strict load of an upstream ``.pth`` / ``.pth.xz`` state_dict; returned in eval mode."""
    state_dict = torch_io.read_pth(path)
    if not hasattr(state_dict, "items"):
        raise torch_io.CheckpointError(f"{path}: expected a state_dict, got {type(state_dict).__name__}")
    return load_state_dict(build(arch, dataset, **overrides), state_dict).eval()


def randomised_state_dict(module, seed: int) -> dict:
    """Upstream-style random values for parity checks without a trained checkpoint: ``t + 0.1·σ·ξ`` for float
    tensors, ``running_var`` in [0.5, 1.5); the adjacency ``A`` and integer buffers untouched."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in module.state_dict().items():
        if not value.is_floating_point() or key == "A":
            out[key] = value.clone()
        elif key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(value.shape, generator=gen)
        else:
            sigma = value.std(unbiased=False).item() if value.numel() > 1 else 0.0
            out[key] = value + 0.1 * (sigma if sigma > 1e-3 else 1.0) * torch.randn(value.shape, generator=gen)
    return out


def calibrate_batch_norm(module, x) -> None:
    """Running statistics = the batch statistics of ``x`` (as for the fixtures), so logits depend on the input;
    leaves ``module`` in eval mode."""
    import torch

    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average: after one batch, exactly its statistics
            layer.train()
    with torch.no_grad():
        module(x)
    module.eval()
