"""The shared encoders and decoders: shapes, layer structure, options and errors."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from disentkit.nn import (
    ARCHITECTURES,
    Architecture,
    QLAEDecoder,
    QLAEEncoder,
    build_decoder,
    build_encoder,
    split_weight_decay,
)
from disentkit.nn.qlae import StyleBlock, n_resampling_stages
from disentkit.registry import Registry

pytestmark = pytest.mark.usefixtures("torch_one_thread")


SHAPES = [(1, 64, 64), (3, 32, 32), (3, 64, 32)]


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_and_gradients(arch, shape):
    torch.manual_seed(0)
    enc = build_encoder(arch, image_shape=shape, out_features=6)
    dec = build_decoder(arch, image_shape=shape, in_features=3)
    x = torch.rand(2, *shape)
    h = enc(x)
    assert h.shape == (2, 6)
    logits = dec(h[:, :3])
    assert logits.shape == (2, *shape)
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    for module in (enc, dec):
        for name, p in module.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_dlib_layers_and_parameter_count():
    enc = build_encoder("dlib", image_shape=(1, 64, 64), out_features=20)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert enc.map_shape == (64, 4, 4)
    # 4 convs (k=4) + Dense(1024 -> 256) + Linear(256 -> 20), with biases
    expected = (
        (1 * 32 + 32 * 32 + 32 * 64 + 64 * 64) * 16
        + (32 + 32 + 64 + 64)
        + (1024 * 256 + 256)
        + (256 * 20 + 20)
    )
    assert sum(p.numel() for p in enc.parameters()) == expected
    dec = build_decoder("dlib", image_shape=(3, 64, 64), in_features=10)
    deconvs = [m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in deconvs] == [64, 32, 32, 3]
    assert build_encoder("dlib", image_shape=(1, 32, 32), out_features=4).map_shape == (64, 2, 2)


@pytest.mark.parametrize(
    ("side", "stages", "map_side"), [(8, 1, 4), (32, 3, 4), (64, 4, 4), (128, 4, 8)]
)
def test_qlae_resampling_stages(side, stages, map_side):
    assert n_resampling_stages((3, side, side)) == stages
    enc = QLAEEncoder((3, side, side), out_features=2)
    assert enc.map_shape == (256, map_side, map_side)
    dec = QLAEDecoder((3, side, side), in_features=2)
    assert tuple(dec.input_map.shape) == (1, 256, map_side, map_side)


def test_qlae_encoder_structure():
    enc = QLAEEncoder((3, 64, 64), out_features=12)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in enc.modules() if isinstance(m, nn.GroupNorm)]
    assert [c.out_channels for c in convs] == [32] * 3 + [64] * 3 + [128] * 3 + [256] * 3
    ksp = [(c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs]
    assert ksp == [(3, 1, 1), (3, 1, 1), (4, 2, 1)] * 4
    assert all(c.bias is None for c in convs)
    assert all(n.num_groups == n.num_channels and n.eps == 1e-6 and n.affine for n in norms)
    acts = [m for m in enc.convs if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 12 and all(a.negative_slope == 0.2 for a in acts)
    linears = [m for m in enc.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (256 * 16, 256),
        (256, 256),
        (256, 12),
    ]


def test_qlae_decoder_structure():
    dec = QLAEDecoder((3, 64, 64), in_features=12)
    blocks = list(dec.blocks)
    assert len(blocks) == 12 and all(isinstance(b, StyleBlock) for b in blocks)
    assert [b.conv.out_channels for b in blocks] == [256] * 3 + [128] * 3 + [64] * 3 + [32] * 3
    ksp = [(b.conv.kernel_size[0], b.conv.stride[0], b.conv.padding[0]) for b in blocks]
    assert ksp == [(3, 1, 1), (3, 1, 1), (4, 2, 1)] * 4
    assert all(b.conv.bias is None for b in blocks)
    assert all(not b.norm.affine and b.norm.eps == 1e-6 for b in blocks)
    assert torch.all(dec.input_map == 0.1)
    assert dec.out.kernel_size == (3, 3) and dec.out.bias is None and dec.out.out_channels == 3
    linears = [m for m in dec.mapping if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 256), (256, 256)]


def _styles(dec: QLAEDecoder, z: torch.Tensor) -> list[torch.Tensor]:
    seen = []
    hooks = [b.style_act.register_forward_hook(lambda m, i, o: seen.append(o)) for b in dec.blocks]
    dec(z)
    for hook in hooks:
        hook.remove()
    return seen


def test_style_activation_option():
    torch.manual_seed(0)
    z = torch.randn(4, 5)
    relu = QLAEDecoder((1, 32, 32), in_features=5)
    assert all((s >= 0).all() for s in _styles(relu, z))  # the reference's non-negative styles
    torch.manual_seed(0)
    linear = QLAEDecoder((1, 32, 32), in_features=5, style_activation="none")
    assert any((s < 0).any() for s in _styles(linear, z))
    dec = build_decoder("qlae", image_shape=(1, 32, 32), in_features=5, style_activation="none")
    assert isinstance(dec.blocks[0].style_act, nn.Identity)
    with pytest.raises(ValueError, match="style_activation must be one of"):
        QLAEDecoder((1, 32, 32), in_features=5, style_activation="tanh")


def _fan_in(m: nn.Module) -> int:
    if isinstance(m, nn.Linear):
        return m.in_features
    # conv and transposed conv: the layer's input channels (per group) × kernel area
    return m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]


def test_qlae_initialisation_is_equinox_uniform():
    """Every dense and (transposed) conv layer: weights and biases ~ U(±1/√fan_in), as the
    reference's Equinox layers. For n draws of U(±b) the sample std has a relative standard
    error of √(0.2/n) (Var s² ≈ (μ₄ − σ⁴)/n with μ₄ = b⁴/5, σ² = b²/3) and the mean a
    standard error of b/√(3n); both are checked at 5 standard errors."""
    torch.manual_seed(0)
    enc = QLAEEncoder((3, 64, 64), out_features=12)
    dec = QLAEDecoder((3, 64, 64), in_features=12)
    layers = [(f"{tag}.{name}", m) for tag, net in (("encoder", enc), ("decoder", dec))
              for name, m in net.named_modules()
              if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d)]
    kinds = {type(m) for _, m in layers}
    assert kinds == {nn.Linear, nn.Conv2d, nn.ConvTranspose2d}
    scaled_biases = []
    for name, m in layers:
        bound = 1 / _fan_in(m) ** 0.5
        w = m.weight.detach().double().flatten()
        n = w.numel()
        assert w.abs().max() <= bound, name
        assert abs(w.std().item() / (bound / 3**0.5) - 1) <= 5 * (0.2 / n) ** 0.5, name
        assert abs(w.mean().item()) <= 5 * bound / (3 * n) ** 0.5, name
        if m.bias is not None:
            b = m.bias.detach().double()
            assert b.abs().max() <= bound, name
            scaled_biases.append(b / bound)  # U(−1, 1) under the law
        else:
            assert not isinstance(m, nn.Linear), name  # the reference's dense layers have one
    # the reference's convs have no bias; its dense layers do (drawn, not zero)
    assert len(scaled_biases) == sum(isinstance(m, nn.Linear) for _, m in layers)
    b = torch.cat(scaled_biases)
    assert abs(b.std().item() * 3**0.5 - 1) <= 5 * (0.2 / b.numel()) ** 0.5
    assert abs(b.mean().item()) <= 5 / (3 * b.numel()) ** 0.5
    # norms as Equinox: unit scales and zero shifts; the learned input map starts at 0.1
    norm = enc.convs[1]
    assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    assert torch.all(dec.input_map == 0.1)


def test_split_weight_decay_qlae():
    enc = QLAEEncoder((1, 32, 32), out_features=4)
    dec = QLAEDecoder((1, 32, 32), in_features=4)
    model = nn.ModuleDict({"encoder": enc, "decoder": dec})
    decay, no_decay = split_weight_decay(model)
    names = {id(p): n for n, p in model.named_parameters()}
    decay_names = {names[id(p)] for p in decay}
    no_decay_names = {names[id(p)] for p in no_decay}
    assert "decoder.input_map" in decay_names
    assert "encoder.convs.1.weight" in decay_names  # GroupNorm scale
    assert all(n.endswith("bias") for n in no_decay_names)
    assert "encoder.convs.1.bias" in no_decay_names  # GroupNorm shift
    assert len(decay) + len(no_decay) == len(list(model.parameters()))
    decay2, no_decay2 = split_weight_decay(model, exclude=("decoder.",))
    assert {id(p) for p in dec.parameters()} <= {id(p) for p in no_decay2}
    assert len(decay2) + len(no_decay2) == len(decay) + len(no_decay)


def test_split_weight_decay_skips_frozen():
    lin = nn.Linear(2, 2)
    lin.bias.requires_grad_(False)
    decay, no_decay = split_weight_decay(lin)
    assert decay == [lin.weight] and no_decay == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"arch": "resnet", "image_shape": (1, 64, 64)}, "arch must be one of"),
        ({"arch": "dlib", "image_shape": (1, 48, 48)}, "powers of two"),
        ({"arch": "dlib", "image_shape": (1, 8, 8)}, "powers of two >= 16"),
        ({"arch": "qlae", "image_shape": (1, 4, 4)}, "powers of two >= 8"),
        ({"arch": "dlib", "image_shape": (64, 64)}, r"\(C, H, W\)"),
    ],
)
def test_bad_arguments(kwargs, match):
    arch = kwargs.pop("arch")
    with pytest.raises(ValueError, match=match):
        build_encoder(arch, out_features=4, **kwargs)
    with pytest.raises(ValueError, match=match):
        build_decoder(arch, in_features=4, **kwargs)


def test_bad_widths_and_options():
    with pytest.raises(ValueError, match="out_features"):
        build_encoder("dlib", image_shape=(1, 64, 64), out_features=0)
    with pytest.raises(ValueError, match="in_features"):
        build_decoder("dlib", image_shape=(1, 64, 64), in_features=2.5)
    with pytest.raises(ValueError, match="takes no options"):
        build_decoder("dlib", image_shape=(1, 64, 64), in_features=2, style_activation="relu")


# -- the registry ------------------------------------------------------------------------


def test_architectures_are_a_registry_with_a_did_you_mean():
    assert isinstance(ARCHITECTURES, Registry) and {"dlib", "qlae"} <= set(ARCHITECTURES)
    assert all(isinstance(e, Architecture) and e.name == n for n, e in ARCHITECTURES.items())
    with pytest.raises(ValueError, match=r"arch must be one of .*received 'qlea' "
                       r"\(did you mean 'qlae'\?\)"):
        build_encoder("qlea", image_shape=(1, 32, 32), out_features=2)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_declared_options_are_accepted_and_others_rejected(arch):
    entry = ARCHITECTURES[arch]
    for part, build, width in (("encoder", build_encoder, "out_features"),
                               ("decoder", build_decoder, "in_features")):
        declared = getattr(entry, f"{part}_options")
        builder = getattr(entry, part)
        params = inspect.signature(builder).parameters
        assert declared == tuple(n for n, p in params.items() if p.kind is p.KEYWORD_ONLY)
        defaults = {n: params[n].default for n in declared}
        module = build(arch, image_shape=(1, 32, 32), **{width: 2}, **defaults)
        assert isinstance(module, nn.Module)
        with pytest.raises(ValueError, match=f"the '{arch}' {part}"):
            build(arch, image_shape=(1, 32, 32), **{width: 2}, no_such_option=1)
