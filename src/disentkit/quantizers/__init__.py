"""Quantizers under one contract: ``codes, indices, aux = q(z)`` and ``q.indices_to_codes``.

Registered names (:data:`QUANTIZERS`, built with :func:`build_quantizer`):

- ``scalar``: a learnable scalar codebook per latent dimension (QLAE's latent quantization,
  :mod:`disentkit.quantizers.scalar`);
- ``global_scalar``: one scalar codebook shared by every dimension (QLAE's ablation);
- ``fsq``: finite scalar quantization (:mod:`disentkit.quantizers.fsq`);
- ``vq``: VQ-VAE vector quantization with optional EMA updates and dead-code restarts
  (:mod:`disentkit.quantizers.vq`);
- ``cosine_vq``: vector quantization by cosine similarity (L2-normalised codes and
  entries) with the entropy loss, as factorized quantization uses it
  (:mod:`disentkit.quantizers.cosine`).

See :mod:`disentkit.quantizers._base` for the contract.

Example:
    >>> import torch
    >>> q = build_quantizer("fsq", 4, levels=(8, 5, 5, 5))
    >>> codes, indices, aux = q(torch.randn(2, 4))
    >>> codes.shape, indices.shape, bool((q.indices_to_codes(indices) == codes).all())
    (torch.Size([2, 4]), torch.Size([2, 1]), True)
"""

from disentkit.quantizers._base import (
    QUANTIZERS,
    Quantizer,
    QuantizerOutput,
    build_quantizer,
    quantizer_options,
    register_quantizer,
    usage_stats,
)
from disentkit.quantizers.cosine import CosineQuantizer
from disentkit.quantizers.fsq import FSQ
from disentkit.quantizers.scalar import GlobalScalarQuantizer, ScalarQuantizer
from disentkit.quantizers.vq import VectorQuantizer

__all__ = [
    "FSQ",
    "QUANTIZERS",
    "CosineQuantizer",
    "GlobalScalarQuantizer",
    "Quantizer",
    "QuantizerOutput",
    "ScalarQuantizer",
    "VectorQuantizer",
    "build_quantizer",
    "quantizer_options",
    "register_quantizer",
    "usage_stats",
]
