"""Every Python package in the tree must be in pyproject's explicit package list, or installs miss it."""
import tomllib

from conftest import REPO


def test_pyproject_lists_every_package():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {v: k for k, v in config["package-dir"].items()}
    found = set()
    for init in REPO.glob("**/__init__.py"):
        rel = init.parent.relative_to(REPO)
        if rel.parts[0] in ("tests", "bench", ".venv", "build") or rel.parts[0].startswith("."):
            continue
        top = rel.parts[0]
        name = ".".join((mapped[top].split(".") if top in mapped else [top]) + list(rel.parts[1:]))
        found.add(name)
    assert found <= listed, f"add to pyproject [tool.setuptools] packages: {sorted(found - listed)}"
