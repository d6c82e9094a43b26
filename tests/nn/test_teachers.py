"""Teachers: the registry and import paths, the frozen wrapper, the built-in random teacher."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from disentkit.nn.teachers import (
    TEACHERS,
    FrozenTeacher,
    RandomConvTeacher,
    build_teacher,
    resolve_teacher,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class _Small(nn.Module):
    """Mean of each channel → 5 features, with a BatchNorm to check eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(5)
        self.linear = nn.Linear(1, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(x.mean((1, 2, 3))[:, None]))  # (B, 5)


def small_teacher() -> nn.Module:
    """A teacher factory reachable as ``tests.nn.test_teachers:small_teacher``."""
    with torch.random.fork_rng(devices=[]):  # deterministic, global RNG left alone
        torch.manual_seed(5)
        return _Small()


def not_a_module() -> object:
    return object()


class Namespace:
    factory = staticmethod(small_teacher)


def test_registry_name_and_import_paths():
    assert "random_conv" in TEACHERS
    assert isinstance(resolve_teacher("random_conv"), RandomConvTeacher)
    assert isinstance(resolve_teacher("tests.nn.test_teachers:small_teacher"), _Small)
    assert isinstance(resolve_teacher("tests.nn.test_teachers:Namespace.factory"), _Small)


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("randm_conv", ValueError, r"unknown teacher 'randm_conv' \(did you mean 'random_conv'"),
        ("no_such_module_xyz:f", ValueError, "cannot import module 'no_such_module_xyz'"),
        ("tests.nn.test_teachers:missing", ValueError, "has no attribute 'missing'"),
        (":factory", ValueError, "must be 'package.module:factory'"),
        ("tests.nn.test_teachers:not_a_module", TypeError, "must build an nn.Module"),
        (3, TypeError, "registered name or 'package.module:factory'"),
    ],
)
def test_bad_teachers_are_clear_errors(spec, error, message):
    with pytest.raises(error, match=message):
        resolve_teacher(spec)


def test_frozen_teacher_no_grads_eval_mode_and_no_state():
    teacher = build_teacher("tests.nn.test_teachers:small_teacher")
    assert isinstance(teacher, FrozenTeacher)
    assert not any(p.requires_grad for p in teacher.parameters())
    parent = nn.Module()
    parent.head = nn.Linear(5, 2)
    parent.teacher = teacher
    parent.train()
    assert parent.training and not teacher.training and not teacher.net.norm.training
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    features = teacher(x)
    assert features.shape == (4, 5) and features.dtype == torch.float32
    assert not features.requires_grad
    assert set(parent.state_dict()) == {"head.weight", "head.bias"}
    # strict loading of the parent's state fills the teacher's entries from itself
    before = {k: v.clone() for k, v in nn.Module.state_dict(teacher).items()}
    parent.load_state_dict({"head.weight": torch.zeros(2, 5), "head.bias": torch.zeros(2)})
    after = nn.Module.state_dict(teacher)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not parent.head.weight.any()


def test_frozen_teacher_rejects_bad_outputs():
    with pytest.raises(ValueError, match=r"features \(B, D_t\)"):
        FrozenTeacher(nn.Identity())(torch.rand(2, 3, 4, 4))


def test_random_conv_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    a = RandomConvTeacher(seed=0)
    assert torch.equal(torch.rand(3), expected)  # building drew nothing from the global RNG
    b, c = RandomConvTeacher(seed=0), RandomConvTeacher(seed=1)
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))
    grey = torch.rand(2, 1, 32, 32)
    assert a(grey).shape == (2, 256)
    torch.testing.assert_close(a(grey), a(grey.expand(-1, 3, -1, -1)))
    assert a(torch.rand(2, 4, 16, 16)).shape == (2, 256)  # other channel counts are averaged
    with pytest.raises(ValueError, match="multiple of"):
        RandomConvTeacher(size=20)
