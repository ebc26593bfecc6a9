"""Every ```python block of README.md runs as written, and prints what its comments say.

The blocks run in order in one namespace (a later block may use a name an earlier one made),
in a temporary working folder, on the examples shipped with the package: the README uses
runnable paths (``Path(xanesnet.__file__).parent / "examples" / ...``), so no placeholder is
substituted. A line ``print(EXPR)  # TEXT`` promises that it prints TEXT: the test holds the
README to it.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
_PROMISE = re.compile(r"^\s*print\(.*\)\s+#\s*(?P<text>.+)$")


def python_blocks() -> list[str]:
    """The source of each ```python block of the README, in order."""
    return _BLOCK.findall(README.read_text(encoding="utf-8"))


def promised_output(block: str) -> list[str]:
    """What the block's ``print(...)  # TEXT`` lines say they print, in order."""
    return [m["text"].strip() for line in block.splitlines() if (m := _PROMISE.match(line))]


def test_readme_has_python_blocks():
    blocks = python_blocks()
    assert len(blocks) >= 2
    assert all(promised_output(b) for b in blocks), "each block shows what it prints"


# pymatgen warns about negative intensities only out of the models' domain; the README's
# molecule must not trigger it
@pytest.mark.filterwarnings("error:Double check the intensities")
def test_readme_python_blocks_run_and_print_what_they_say(tmp_path, monkeypatch):
    pytest.importorskip("pymatgen.core")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for number, block in enumerate(python_blocks(), start=1):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        printed = [line.strip() for line in out.getvalue().splitlines()]
        assert printed == promised_output(block), f"README python block {number}"
