from __future__ import annotations

import pytest

from disentkit.registry import Registry, UnknownNameError


def test_unknown_name_lists_known_names_and_closest_match() -> None:
    reg: Registry[int] = Registry("widget")
    reg.add("alpha", 1)
    reg.add("beta", 2)
    with pytest.raises(UnknownNameError) as info:
        reg["alpah"]
    msg = str(info.value)
    assert "did you mean 'alpha'" in msg and "alpha, beta" in msg
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


def test_names_are_snake_case_and_unique() -> None:
    reg: Registry[int] = Registry("widget")
    reg.add("ok_name", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("ok_name", 2)
    for bad in ("Bad", "with-dash", "1x", ""):
        with pytest.raises(ValueError, match="snake_case"):
            reg.add(bad, 3)


def test_registry_is_a_read_only_mapping() -> None:
    reg: Registry[int] = Registry("widget")

    @reg.register("one")
    def one() -> int:
        return 1

    assert list(reg) == ["one"] and len(reg) == 1 and reg["one"] is one
    assert "two" not in reg
    assert reg.get("two") is None
