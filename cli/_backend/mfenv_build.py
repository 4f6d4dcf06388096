"""
The build backend of the mfenv command line (PEP 517, with PEP 660 editable installs): it zips src/mfenv
into a pure-Python wheel with its metadata and console script, and nothing else.

Why not setuptools: a build that needs no package at all installs offline. With setuptools, pip fetches
setuptools and wheel into an isolated build environment from the index (or, with --no-build-isolation,
needs `wheel` installed next to setuptools, which a plain virtualenv lacks). Here `pip install ./cli` and
`pipx install ./cli` work on a machine that already has botocore and no network.

The metadata lives below; pyproject.toml repeats it in its [project] table for people and tools that read
it there, and cli/tests/test_packaging.py checks that the two agree.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

NAME = "mfenv"
SUMMARY = "The teammate's command line for mfenv: private Metaflow back ends on AWS"
REQUIRES_PYTHON = ">=3.9"
REQUIRES_DIST = ["botocore>=1.31"]
LICENSE = "Apache-2.0"
CONSOLE_SCRIPTS = {"mfenv": "mfenv.cli:main"}

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(ROOT, "src", NAME)
TAG = "py3-none-any"
# Fixed timestamps, so the same sources always make the same archive.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def version() -> str:
    with open(os.path.join(PACKAGE_DIR, "__init__.py"), encoding="utf-8") as source:
        match = re.search(r'^__version__\s*=\s*"([^"]+)"', source.read(), re.MULTILINE)
    if not match:
        raise RuntimeError("src/mfenv/__init__.py has no __version__")
    return match.group(1)


def _readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme:
        return readme.read()


def metadata() -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {version()}",
        f"Summary: {SUMMARY}",
        f"License: {LICENSE}",
        f"Requires-Python: {REQUIRES_PYTHON}",
        *[f"Requires-Dist: {requirement}" for requirement in REQUIRES_DIST],
        "Description-Content-Type: text/markdown",
    ]
    return "\n".join(lines) + "\n\n" + _readme()


def _dist_info() -> str:
    return f"{NAME}-{version()}.dist-info"


def _dist_info_files() -> dict:
    scripts = "".join(f"{name} = {target}\n" for name, target in CONSOLE_SCRIPTS.items())
    return {
        "METADATA": metadata(),
        "WHEEL": f"Wheel-Version: 1.0\nGenerator: mfenv_build\nRoot-Is-Purelib: true\nTag: {TAG}\n",
        "entry_points.txt": f"[console_scripts]\n{scripts}",
        "top_level.txt": f"{NAME}\n",
    }


def _package_files():
    for directory, subdirectories, files in os.walk(PACKAGE_DIR):
        subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(directory, name)
            yield os.path.relpath(path, os.path.join(ROOT, "src")).replace(os.sep, "/"), path


def _write_wheel(wheel_directory: str, entries: dict) -> str:
    """entries: archive path → bytes. Adds RECORD, with a hash and size for every other file."""
    filename = f"{NAME}-{version()}-{TAG}.whl"
    record_path = f"{_dist_info()}/RECORD"
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in entries.items():
            info = zipfile.ZipInfo(path, ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
            records.append(f"{path},sha256={digest},{len(data)}")
        records.append(f"{record_path},,")
        info = zipfile.ZipInfo(record_path, ZIP_DATE)
        info.external_attr = 0o644 << 16
        wheel.writestr(info, "\n".join(records) + "\n")
    return filename


def _dist_info_entries() -> dict:
    return {f"{_dist_info()}/{name}": text.encode("utf-8") for name, text in _dist_info_files().items()}


# ---- PEP 517 ----


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = os.path.join(metadata_directory, _dist_info())
    os.makedirs(target, exist_ok=True)
    for name, text in _dist_info_files().items():
        with open(os.path.join(target, name), "w", encoding="utf-8") as out:
            out.write(text)
    return _dist_info()


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    entries = {}
    for archive_path, path in _package_files():
        with open(path, "rb") as source:
            entries[archive_path] = source.read()
    entries.update(_dist_info_entries())
    return _write_wheel(wheel_directory, entries)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # A .pth line puts src/ on sys.path: edits take effect without reinstalling.
    entries = {f"__editable__.{NAME}.pth": (os.path.join(ROOT, "src") + "\n").encode("utf-8")}
    entries.update(_dist_info_entries())
    return _write_wheel(wheel_directory, entries)


def build_sdist(sdist_directory, config_settings=None):
    base = f"{NAME}-{version()}"
    filename = f"{base}.tar.gz"
    sources = ["pyproject.toml", "README.md"]
    for top in ("_backend", "src", "tests"):
        for directory, subdirectories, files in os.walk(os.path.join(ROOT, top)):
            subdirectories[:] = sorted(name for name in subdirectories if name not in ("__pycache__", ".pytest_cache"))
            sources += [os.path.relpath(os.path.join(directory, name), ROOT) for name in sorted(files) if not name.endswith(".pyc")]
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as sdist:
        for relative in sources:
            info = sdist.gettarinfo(os.path.join(ROOT, relative), arcname=f"{base}/{relative.replace(os.sep, '/')}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with open(os.path.join(ROOT, relative), "rb") as source:
                sdist.addfile(info, source)
        pkg_info = metadata().encode("utf-8")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(pkg_info)
        sdist.addfile(info, io.BytesIO(pkg_info))
    return filename
