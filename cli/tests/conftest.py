"""
Every test runs as on a machine with nothing configured: an empty home, no AWS_*, MFENV_* or METAFLOW_*
variable from the developer's shell, and no instance metadata look-up (botocore would otherwise try
169.254.169.254 when it finds no credentials).
"""
import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_machine(tmp_path, monkeypatch):
    for variable in list(os.environ):
        if variable.startswith(("AWS_", "MFENV_", "METAFLOW_", "XDG_CACHE_HOME")):
            monkeypatch.delenv(variable, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    return home


@pytest.fixture
def home(clean_machine) -> Path:
    return clean_machine


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
