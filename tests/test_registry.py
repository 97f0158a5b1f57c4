import pytest

from shift_hub import cli
from shift_hub.registry import REGISTRY, expand, get, groups


def test_names_are_unique_keys_and_valid_config_names():
    import re

    for name, spec in REGISTRY.items():
        assert name == spec.name
        assert re.fullmatch(r"[a-z0-9_]+", name), name


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_entry_is_complete_and_its_function_imports(name):
    spec = REGISTRY[name]
    assert spec.description and spec.citation.lstrip().startswith("@")
    assert spec.encoding.format in ("JPEG", "PNG")
    fn = spec.load_fn()
    assert fn is None or callable(fn)
    if spec.channels == 4:
        assert spec.encoding.format == "PNG"


def test_clean_geometry_and_encoding_as_declared():
    clean = get("clean")
    assert (clean.geometry.resize_shorter, clean.geometry.center_crop) == (256, 224)
    assert get("clean_full").geometry.describe() == "full resolution"


def test_expand_groups_and_unknown_names():
    assert expand(["clean", "clean"]) == ["clean"]
    for group, members in groups().items():
        assert expand([group]) == members
    assert "clean" in expand(["all-cpu"])
    assert expand(["gaussian_noise"]) == [f"gaussian_noise_{k}" for k in range(1, 6)]
    with pytest.raises(KeyError, match="shift-hub list"):
        get("no_such_shift")


def test_cli_list_prints_every_config(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in REGISTRY:
        assert name in out
