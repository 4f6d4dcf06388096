"""The in-tree build backend makes the package pyproject.toml describes: a wheel pip can install offline."""
import base64
import csv
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_backend"))
import mfenv_build  # noqa: E402  (the backend is not a package; pip finds it through backend-path)

from mfenv import __version__  # noqa: E402


def test_the_backend_and_pyproject_describe_the_same_package():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    build_system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    assert build_system == {"requires": [], "build-backend": "mfenv_build", "backend-path": ["_backend"]}
    assert project["name"] == mfenv_build.NAME
    assert project["description"] == mfenv_build.SUMMARY
    assert project["requires-python"] == mfenv_build.REQUIRES_PYTHON
    assert project["dependencies"] == mfenv_build.REQUIRES_DIST
    assert project["license"] == mfenv_build.LICENSE
    assert project["scripts"] == mfenv_build.CONSOLE_SCRIPTS
    assert mfenv_build.version() == __version__


def test_the_wheel_holds_every_module_its_metadata_and_a_true_record(tmp_path):
    # act
    name = mfenv_build.build_wheel(str(tmp_path))

    # assess
    assert name == f"mfenv-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(tmp_path / name) as wheel:
        files = set(wheel.namelist())
        modules = {f"mfenv/{path.name}" for path in (ROOT / "src" / "mfenv").glob("*.py")}
        assert modules <= files
        dist_info = f"mfenv-{__version__}.dist-info"
        assert wheel.read(f"{dist_info}/entry_points.txt").decode() == "[console_scripts]\nmfenv = mfenv.cli:main\n"
        assert "Requires-Dist: botocore>=1.31" in wheel.read(f"{dist_info}/METADATA").decode()
        rows = list(csv.reader(io.StringIO(wheel.read(f"{dist_info}/RECORD").decode())))
        assert {row[0] for row in rows} == files
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                continue
            data = wheel.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data))
