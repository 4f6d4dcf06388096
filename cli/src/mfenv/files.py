"""
The two files `mfenv use` writes on the teammate's machine, and how it avoids clobbering anyone's:

- `$METAFLOW_HOME/config_<name>.json` (default ~/.metaflowconfig): exactly the body of GET .../config.
  JSON has no comments, so what mfenv wrote is remembered by its SHA-256 in `.mfenv-written.json` next
  to it; a file whose content is not what mfenv last wrote there is someone's (or an edited copy) and is
  left alone unless --force.
- the section `[profile mfenv-<name>]` of `$AWS_CONFIG_FILE` (default ~/.aws/config), marked by a comment
  line `# written by mfenv ...` inside it; a section without that line is refused unless --force. The rest
  of the file is kept byte for byte (a config parser would drop comments and reorder).

Both are replaced atomically (a temporary file renamed over the old one), through a symlink if the path is
one (dotfile managers link ~/.aws/config).
"""
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from .errors import CliError, Exit
from .identity import Source, credential_process_command

MARKER = '# written by mfenv: "mfenv use" rewrites this section; delete this line to keep your own edits'
MARKER_PREFIX = "# written by mfenv"
LEDGER = ".mfenv-written.json"

_SECTION_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(?:[#;].*)?$")
_KEY_VALUE = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*[=:]\s*(.*?)\s*$")


def profile_name_for(name: str) -> str:
    return f"mfenv-{name}"


def aws_config_path(environ: Mapping[str, str]) -> Path:
    return Path(os.path.expanduser(environ.get("AWS_CONFIG_FILE") or "~/.aws/config"))


def metaflow_home(environ: Mapping[str, str]) -> Path:
    return Path(os.path.expanduser(environ.get("METAFLOW_HOME") or "~/.metaflowconfig"))


def _write_atomically(path: Path, text: str, new_file_mode: int) -> None:
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o777 if target.exists() else new_file_mode
    handle, temporary = tempfile.mkstemp(dir=str(target.parent), prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# ---- ~/.aws/config ----


def _section_bounds(lines: List[str], section: str):
    """(start, end) line indexes of `[section]` (end exclusive, trailing blank lines excluded), or None."""
    for start, line in enumerate(lines):
        match = _SECTION_HEADER.match(line)
        if match and " ".join(match.group(1).split()) == section:
            end = start + 1
            while end < len(lines) and not _SECTION_HEADER.match(lines[end]):
                end += 1
            while end > start + 1 and not lines[end - 1].strip():
                end -= 1
            return start, end
    return None


def read_written_profile(path: Path, profile: str) -> Optional[Dict[str, str]]:
    """The settings of `[profile <profile>]` if mfenv wrote that section (it carries the marker), else None."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    bounds = _section_bounds(lines, f"profile {profile}")
    if not bounds:
        return None
    body = lines[bounds[0] + 1 : bounds[1]]
    if not any(line.strip().startswith(MARKER_PREFIX) for line in body):
        return None
    settings = {}
    for line in body:
        match = _KEY_VALUE.match(line)
        if match and not line.lstrip().startswith(("#", ";")):
            settings[match.group(1)] = match.group(2)
    return settings


def profile_section(name: str, role_arn: str, region: str, source: Source) -> List[str]:
    """The lines of `[profile mfenv-<name>]`: the access role, assumed from the teammate's own credentials."""
    lines = [f"[profile {profile_name_for(name)}]", MARKER]
    if source.kind == "profile":
        # botocore assumes the role from that profile, and assumes it again when the session runs out.
        lines += [f"role_arn = {role_arn}", f"source_profile = {source.profile}", f"role_session_name = {name}"]
    else:
        # Keys in the environment or an instance role cannot be named as a source_profile; mfenv assumes
        # the role itself, and botocore runs it again before the Expiration it prints.
        lines.append(f"credential_process = {credential_process_command(name, role_arn, region)}")
    lines.append(f"region = {region}")
    return lines


def profile_update(path: Path, section_lines: List[str], force: bool = False) -> Optional[str]:
    """
    The AWS config file's new text with the section in it (replacing an earlier one that mfenv wrote), or
    None when it is already there as is. A section of the same name that mfenv did not write is refused
    unless `force`.
    """
    try:
        original = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        original = ""
    lines = original.splitlines()
    header = _SECTION_HEADER.match(section_lines[0])
    bounds = _section_bounds(lines, " ".join(header.group(1).split()))
    if bounds:
        body = lines[bounds[0] + 1 : bounds[1]]
        if not force and not any(line.strip().startswith(MARKER_PREFIX) for line in body):
            raise CliError(
                f"{path} already has a section [{header.group(1)}] that mfenv did not write, so it is left as "
                "it is: rename that profile, or run again with --force to replace it.",
                Exit.NOT_OURS,
            )
        updated = lines[: bounds[0]] + section_lines + lines[bounds[1] :]
    else:
        updated = lines + ([""] if lines and lines[-1].strip() else []) + section_lines
    text = "\n".join(updated) + "\n"
    return None if text == original else text


def write_profile(path: Path, text: str) -> None:
    # AWS's own tools create this file readable by its owner only.
    _write_atomically(path, text, 0o600)


# ---- $METAFLOW_HOME/config_<name>.json ----


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _ledger(home: Path) -> dict:
    try:
        ledger = json.loads((home / LEDGER).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return ledger if isinstance(ledger, dict) else {}


def metaflow_config_update(home: Path, name: str, text: str, force: bool = False) -> bool:
    """
    Whether config_<name>.json must be (re)written to hold `text`. A file there that mfenv did not write
    (its content is not what mfenv last wrote there) is refused unless `force`.
    """
    path = home / f"config_{name}.json"
    try:
        current: Optional[str] = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return True
    if current == text:
        return False
    if not force and _ledger(home).get(path.name) != _sha256(current):
        raise CliError(
            f"{path} exists and is not the file mfenv wrote there (it was written by hand, by Metaflow, or "
            "edited since), so it is left as it is: move it away, or run again with --force to replace it.",
            Exit.NOT_OURS,
        )
    return True


def write_metaflow_config(home: Path, name: str, text: str) -> Path:
    """Writes config_<name>.json exactly as served, and remembers what it wrote."""
    path = home / f"config_{name}.json"
    _write_atomically(path, text, 0o644)
    ledger = _ledger(home)
    ledger[path.name] = _sha256(text)
    _write_atomically(home / LEDGER, json.dumps(ledger, indent=2, sort_keys=True) + "\n", 0o644)
    return path
