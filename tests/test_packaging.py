"""constraints-oldest.txt pins every floor pyproject.toml declares, so that `make test-oldest` tests the floors."""
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement  # pytest's own dependency
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _declared():
    """Every requirement of pyproject.toml: the build backend, the dependencies and the test extra."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    names = pyproject["build-system"]["requires"] + project["dependencies"] + project["optional-dependencies"]["test"]
    return [Requirement(r) for r in names]


def _pins():
    text = (ROOT / "constraints-oldest.txt").read_text()
    pins = re.findall(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)", text, re.M)
    return {canonicalize_name(name): Version(version) for name, version in pins}


def test_every_declared_floor_is_pinned_exactly():
    pins = _pins()
    for req in _declared():
        floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert len(floors) == 1, f"{req}: expected one '>=' floor in pyproject.toml"
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints-oldest.txt does not pin {req.name} (floor {floors[0]})"
        # Version("2.9") == Version("2.9.0"): the floor's own release, not a later one that happens to install
        assert pins[name] == floors[0], f"constraints-oldest.txt pins {req.name}=={pins[name]}, not the floor of {req}"


def test_every_pin_is_a_declared_requirement():
    declared = {canonicalize_name(r.name) for r in _declared()}
    assert set(_pins()) <= declared, f"pinned but not declared: {sorted(set(_pins()) - declared)}"
