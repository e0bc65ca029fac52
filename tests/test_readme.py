"""The README's Python examples run as written, offline (see conftest.small_mnist)."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, small_mnist):
    """Each block runs as written; MNIST is a small generated cache (no download, no real data needed)."""
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {"__name__": "readme"})
