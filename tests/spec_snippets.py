"""The specification's code blocks, read from docs/spec/checkpoints.md (a copy of the user's spec)."""

import re
from pathlib import Path

SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec" / "checkpoints.md"


def spec_blocks() -> dict[str, str]:
    """Python blocks keyed by the heading above them, with `genesis` read as our `sim`."""
    text = SPEC.read_text()
    blocks = {}
    for heading, body in re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M):
        for code in re.findall(r"```python\n(.*?)```", body, flags=re.S):
            blocks[heading.strip()] = code.replace("import genesis as gs", "import sim as gs")
    return blocks
