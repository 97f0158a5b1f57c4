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


def test_package_data_ships_every_data_file_with_its_notice():
    """Files under shift_hub/data/ (frost photos, RobustBench's id list and licence) reach the wheel only through
    pyproject's package-data globs; a file they miss is absent from every install."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    package = REPO / "shift_hub"
    shipped = {p for pattern in config["package-data"]["shift_hub"] for p in package.glob(pattern) if p.is_file()}
    present = {p for p in (package / "data").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert present <= shipped, f"not shipped: {sorted(str(p.relative_to(package)) for p in present - shipped)}"
    robustbench = package / "data" / "robustbench"
    assert {"imagenet_test_image_ids.txt", "LICENSE", "NOTICE.md"} <= {p.name for p in robustbench.iterdir()}
    for folder in {p.parent for p in present}:
        assert any(n in {"NOTICE.md", "LICENSE"} for n in (p.name for p in folder.iterdir())), f"{folder}: no notice"
