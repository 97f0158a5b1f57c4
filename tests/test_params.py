"""Declared parameters: every registry parameter has a type and domain, and overrides are checked against it."""
import dataclasses
import math

import pytest

from shift_hub import registry
from shift_hub.params import BadParameter, Param, validate
from shift_hub.registry import REGISTRY, ShiftSpec, get, validate_overrides

BUILTIN = sorted(REGISTRY)  # collected before any other test registers its own entries


def check(configs, overrides):
    return validate_overrides([get(n) for n in registry.expand(configs)], overrides)


def bad(configs, overrides) -> str:
    with pytest.raises(BadParameter) as info:
        check(configs, overrides)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    return message


@pytest.mark.parametrize("name", BUILTIN)
def test_every_parameter_is_declared_and_its_default_validates(name):
    spec = REGISTRY[name]
    assert set(spec.param_specs) == set(spec.params), name
    for key, default in spec.params.items():
        param = spec.param_specs[key]
        assert isinstance(param, Param) and not isinstance(default, Param)
        assert param.kind != "any", f"{name}.{key} has no real type"
        assert param.default == default
        coerced = param.coerce(default)
        assert coerced == default and type(coerced) is type(default), (name, key)
        assert param.describe()


def test_params_stay_a_plain_dict_of_defaults():
    drawing = get("drawing")
    assert drawing.params["kernel_size"] == 8 and drawing.params["pattern"] is None
    changed = dataclasses.replace(drawing, params={**drawing.params, "kernel_size": 5})
    assert changed.params["kernel_size"] == 5 and changed.param_specs == drawing.param_specs


@pytest.mark.parametrize("config, key, value, shown", [
    ("drawing", "kernel_size", "abc", "abc"),
    ("drawing", "kernel_size", -5, "-5"),
    ("drawing", "kernel_size", [1, 2], "[1, 2]"),
    ("drawing", "directions", 0, "0"),
    ("drawing", "gradient", "evil", "evil"),
    ("toon_ius", "work_max_side", -1, "-1"),
])
def test_the_issue_cases_fail_with_one_line(config, key, value, shown):
    message = bad([config], {key: value})
    assert message.startswith(f"--set {key}={shown} for {config}: {key} must be "), message
    assert "(default " in message


def test_message_names_the_expected_domain():
    assert bad(["drawing"], {"kernel_size": -5}) == (
        "--set kernel_size=-5 for drawing: kernel_size must be an integer in [1, 128] (default 8)")
    assert "one of sobel, forward" in bad(["drawing"], {"gradient": "evil"})
    assert ">= 32" in bad(["toon_ius"], {"work_max_side": -1})
    assert "odd integer" in bad(["blur_bg"], {"ksize": 4})


def test_weights_errors_name_the_weights_flag():
    message = bad(["cartoon"], {"weights": ""})
    assert message.startswith('--weights "" for cartoon: weights must be')
    assert bad(["cartoon"], {"weights": 3}).startswith("--weights 3 for cartoon")


def test_valid_overrides_are_coerced_and_given_per_config():
    out = check(["drawing", "toon_ius", "clean"],
                {"kernel_size": 5.0, "lam": 1, "work_max_side": "512", "pattern": None, "gradient": "forward"})
    assert out == {"drawing": {"kernel_size": 5, "lam": 1.0, "pattern": None, "gradient": "forward"},
                   "toon_ius": {"work_max_side": 512}, "clean": {}}
    assert type(out["drawing"]["kernel_size"]) is int and type(out["drawing"]["lam"]) is float
    assert check(["cartoon"], {"weights": "/w/model.safetensors"}) == {"cartoon": {"weights": "/w/model.safetensors"}}
    assert check(["drawing"], {"kernel_size": "3"})["drawing"] == {"kernel_size": 3}
    assert check(["blur_bg", "blur_obj"], {"ksize": 5}) == {"blur_bg": {"ksize": 5}, "blur_obj": {"ksize": 5}}
    assert check(["ai_bg"], {"strength": 1, "resolution": 768, "steps": 4})["ai_bg"] == {
        "strength": 1.0, "resolution": 768, "steps": 4}


@pytest.mark.parametrize("config, key, value", [
    ("drawing", "kernel_size", True),  # a bool is not an int
    ("drawing", "kernel_size", 8.5),
    ("drawing", "kernel_size", "8.0"),
    ("drawing", "kernel_size", " 8x"),
    ("drawing", "w_group", 3),
    ("drawing", "lam", math.nan),
    ("drawing", "lam", math.inf),
    ("drawing", "lam", 0),  # exclusive lower bound
    ("drawing", "lam", "Infinity"),
    ("drawing", "lam", True),
    ("drawing", "smoothness", None),
    ("drawing", "pattern", 3),
    ("drawing", "pattern", ""),
    ("drawing", "pattern", {"a": 1}),
    ("toon_handdrawn", "compactness", 0),
    ("toon_handdrawn", "outline_strength", 1.5),
    ("toon_ius", "region_colour", "Mean"),
    ("toon_ius", "hue_tolerance", 91),
    ("rand_bg", "composite", "over"),
    ("ai_bg", "strength", 0),
    ("ai_bg", "resolution", 1000),
    ("ai_bg", "steps", 0),
    ("ai_bg", "model_id", None),
])
def test_invalid_values_are_refused(config, key, value):
    assert f": {key} must be " in bad([config], {key: value})


def test_a_value_with_a_newline_still_gives_one_line():
    message = bad(["drawing"], {"gradient": "sob\nel"})
    assert "sob\\nel" in message


def test_severity_and_other_name_fixed_parameters_are_refused():
    message = bad(["gaussian_noise_3"], {"severity": 5})
    assert "part of the config name" in message and "gaussian_noise_5" in message
    assert "part of the config name" in bad(["drawing"], {"severity": 2})
    assert "part of the config name" in bad(["color_bg_red"], {"color": "blue"})


def test_unknown_keys_are_refused_with_where_to_look():
    message = bad(["drawing", "clean"], {"weights": "x", "kernel_size": 5})
    assert message == ("parameter(s) ['weights'] are not parameters of ['drawing', 'clean']; "
                       "`shift-hub list --params CONFIG` shows each config's parameters")
    assert "+67 more" in bad(["imagenet_c"], {"ksize": 5})


def test_configs_sharing_a_declaration_are_named_together_and_all_errors_reported():
    message = bad(["blur_bg", "blur_obj"], {"ksize": 4, "sigma": -1})
    assert "--set ksize=4 for blur_bg, blur_obj: ksize must be" in message
    assert "; --set sigma=-1 for blur_bg, blur_obj: sigma must be" in message


def test_entries_made_outside_the_registry_pass_undeclared_values_through():
    spec = ShiftSpec(name="test_amount_params", family="test", fn=None, description="t", citation="@misc{x}",
                     params={"amount": 20})
    assert validate_overrides([spec], {"amount": 2.5}) == {"test_amount_params": {"amount": 2.5}}
    declared = ShiftSpec(name="test_declared", family="test", fn=None, description="t", citation="@misc{x}",
                         params={"amount": Param(int, 20, min=0)})
    assert declared.params == {"amount": 20}
    with pytest.raises(BadParameter, match="test_declared: amount must be an integer >= 0"):
        validate_overrides([declared], {"amount": -1})


def test_validate_and_param_directly():
    assert validate("x", "k", "7", Param(int, 1, odd=True)) == 7
    assert validate("x", "flag", "true", Param(bool, False)) is True
    with pytest.raises(BadParameter):
        validate("x", "flag", 1, Param(bool, False))
    assert validate("x", "p", "null", Param(int, None, nullable=True)) is None
    assert validate("x", "p", None, Param("path", None, nullable=True)) is None
    assert issubclass(BadParameter, ValueError) and registry.BadParameter is BadParameter
    with pytest.raises(TypeError):
        Param(list, [])


def test_describe_lists_type_and_range():
    lines = registry.describe(get("drawing"))
    assert lines[0].startswith("pattern = None  (a non-empty path or name or null")
    assert any(line.startswith("kernel_size = 8  (an integer in [1, 128]") for line in lines)
    assert registry.describe(get("gaussian_noise_3")) == [
        "severity = 3  (fixed by the config name, an integer in [1, 5]; ImageNet-C severity)"]
