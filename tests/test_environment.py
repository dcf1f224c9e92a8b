"""The conda environment and pyproject.toml must name the same packages and versions."""

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])


def _conda_pip_requirements() -> set[str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [
        entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)
    ]
    assert len(pip_sections) == 1, "environment.yml should have exactly one pip section"
    return {requirement for requirement in pip_sections[0] if requirement != "-e ."}


def test_environment_yml_lists_the_same_packages_as_pyproject():
    assert _conda_pip_requirements() == _pyproject_requirements()


def test_environment_yml_installs_ftlib_itself():
    assert "-e ." in (ROOT / "environment.yml").read_text()


def _lower_bound_minor(package: str) -> int:
    """The minor version in `package>=X.Y,...` of pyproject's dependencies."""
    (requirement,) = [r for r in _pyproject_requirements() if re.match(rf"{package}\s*[<>=]", r)]
    return int(re.search(r">=\s*\d+\.(\d+)", requirement).group(1))


def test_pyproject_pins_torch_and_torchvision_releases_made_for_each_other():
    # torchvision 0.N pairs with torch 2.(N - 15), e.g. 0.29 with 2.14.
    assert _lower_bound_minor("torchvision") - 15 == _lower_bound_minor("torch")


def test_torch_and_torchvision_come_as_a_matched_pair():
    import torch
    import torchvision

    requirements = _pyproject_requirements()
    assert not any(r.replace(" ", "").startswith("torch==2.13") for r in requirements)
    torch_minor = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    vision_minor = tuple(int(part) for part in torchvision.__version__.split("+")[0].split(".")[:2])
    # torchvision 0.N pairs with torch 2.(N - 15), e.g. 0.29 with 2.14.
    assert vision_minor[1] - 15 == torch_minor[1], (torch.__version__, torchvision.__version__)
