"""A CLI that explains itself and starts fast (issue 16 items 4-5)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap

import pytest

from shift_hub import cli


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_help_and_every_command_examples():
    for name, sub in _subparsers().items():
        missing = [a.option_strings or a.dest for a in sub._actions
                   if not a.help and not isinstance(a, argparse._HelpAction)]
        assert not missing, f"{name}: options without help: {missing}"
        assert sub.epilog and "examples:" in sub.epilog, f"{name} has no examples"
    assert "Regenerate ImageNet distribution-shift benchmarks" in cli.build_parser().format_help()


@pytest.mark.parametrize("flag,value", [("--family", "nope"), ("--group", "imagenet_z")])
def test_list_filters_refuse_unknown_names_listing_the_valid_ones(capsys, flag, value):
    assert cli.main(["list", flag, value]) == 2
    err = capsys.readouterr().err
    assert value in err and ("corruptions" in err if flag == "--family" else "imagenet_c" in err)


def test_list_by_group_and_family(capsys):
    assert cli.main(["list", "--group", "toonnet"]) == 0
    out = capsys.readouterr().out
    assert "toon_handdrawn" in out and "toon_ius" in out and "gaussian_noise_1" not in out
    assert cli.main(["list", "--family", "drawing"]) == 0
    assert "drawing_pattern_i" in capsys.readouterr().out


def test_evaluate_of_the_embedded_model_never_imports_transformers_open_clip_or_diffusers(tmp_path):
    from shift_hub.generate import generate

    generate(["clean"], "samples", tmp_path / "data", limit=2, progress=False)
    script = textwrap.dedent(f"""
        import sys
        from shift_hub.cli import main
        assert main(["evaluate", "efficientnet_lite0", "--data", {str(tmp_path / 'data')!r},
                     "--out", {str(tmp_path / 'res')!r}, "--quiet", "--num-workers", "0", "--no-plots"]) == 0
        print(sorted(m for m in ("transformers", "open_clip", "diffusers", "ray") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_offline_hub_model_fails_before_heavy_imports_with_no_hint_to_go_offline(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from shift_hub.cli import main
        code = main(["evaluate", "someone/not-cached-model", "--data", {str(tmp_path)!r}, "--quiet"])
        print(code, "torch" in sys.modules)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert result.stdout.split() == ["2", "False"], result.stderr[-2000:]
    assert "HF_HUB_OFFLINE=1 forbids" in result.stderr and "not in the local Hugging Face cache" in result.stderr


def test_quiet_hides_info_lines_and_verbose_keeps_them(tmp_path, capsys):
    from shift_hub.generate import generate

    generate(["clean"], "samples", tmp_path / "data", limit=1, progress=False)
    args = ["evaluate", "efficientnet_lite0", "--data", str(tmp_path / "data"), "--num-workers", "0", "--no-plots"]
    assert cli.main([*args, "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert "loading model" not in capsys.readouterr().err
    assert cli.main(["-v", *args, "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "loading model efficientnet_lite0" in err and "Generating validation split" not in err


def test_the_python_api_is_plain_functions_and_import_is_light():
    script = textwrap.dedent("""
        import inspect, sys, types
        import shift_hub
        import shift_hub.evaluation
        assert all(inspect.isfunction(getattr(shift_hub, f)) for f in
                   ("evaluate", "evaluate_many", "leaderboard", "push_results"))
        assert type(shift_hub.evaluation) is types.ModuleType and not callable(shift_hub.evaluation)
        print(sorted(m for m in ("torch", "transformers", "datasets", "matplotlib") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
