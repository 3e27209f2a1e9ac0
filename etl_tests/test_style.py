"""The code keeps the style `pyproject.toml` sets: ruff's lint rules and its formatter at 160 columns."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")


@pytest.mark.parametrize("command", [["check", "--no-fix"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_finds_nothing_to_change(command):
    result = subprocess.run([str(RUFF), *command, "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"ruff {' '.join(command)} (fix: .venv/bin/ruff check --fix . && .venv/bin/ruff format .):\n{result.stdout}{result.stderr}"
