"""The README's configuration table, generated from the settings models (``make docs``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from chronapilot.common.settings import setting_env_names
from chronapilot.devstack.stack import DevstackSettings

BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def table() -> str:
    rows = ["| variable | default | what |", "| --- | --- | --- |"]
    for name, (default, description) in setting_env_names().items():
        rows.append(f"| `{name}` | {_cell(default)} | {description} |")
    for field_name, field in DevstackSettings.model_fields.items():
        rows.append(
            f"| `CHRONAPILOT_{field_name.upper()}` | {_cell(str(field.default))} | "
            f"`make run` only: {field.description} |"
        )
    return "\n".join(rows)


def _cell(default: str) -> str:
    return f"`{default}`" if default else "(none)"


def update(readme: Path) -> None:
    text = readme.read_text()
    block = f"{BEGIN}\n{table()}\n{END}"
    readme.write_text(
        re.sub(f"{re.escape(BEGIN)}.*?{re.escape(END)}", lambda _: block, text, flags=re.DOTALL)
    )


if __name__ == "__main__":
    update(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md"))
