"""Print what pyproject.toml requires, one requirement a line, for `pip install -r`.

    python requirements.py pyproject.toml      # the main dependencies
    python requirements.py pyproject.toml ml   # the [ml] extra

The Dockerfile installs the dependencies before it copies the code, so that layer is
rebuilt only when pyproject.toml changes. The project itself is not installed: its code runs
from /app (on PYTHONPATH), next to its templates, static files and translations, which a
wheel of it would not carry.
"""

from __future__ import annotations

import sys
import tomllib


def requirements(pyproject: str, extra: str | None = None) -> list[str]:
    with open(pyproject, "rb") as file:
        project = tomllib.load(file)["project"]
    if extra is None:
        return list(project["dependencies"])
    return list(project["optional-dependencies"][extra])


if __name__ == "__main__":
    print("\n".join(requirements(*sys.argv[1:3])))
