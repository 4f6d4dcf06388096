"""What `mfenv use` writes on the teammate's machine, and what it refuses to overwrite."""
import json
import os

import pytest

from conftest import write
from mfenv.errors import CliError, Exit
from mfenv.files import (
    MARKER,
    metaflow_config_update,
    profile_section,
    profile_update,
    read_written_profile,
    write_metaflow_config,
    write_profile,
)
from mfenv.identity import Source

ROLE = "arn:aws:iam::123456789012:role/mfenv/mfenv-demo-access"
THEIRS = """\
# my settings
[default]
region = eu-west-1

[profile work]
sso_session = corp   ; inline comment
sso_account_id = 123456789012
"""


def put(path, section, force=False):
    text = profile_update(path, section, force=force)
    if text is not None:
        write_profile(path, text)
    return text is not None


def test_a_profile_from_a_named_source_assumes_the_role_with_source_profile():
    # act
    section = profile_section("demo", ROLE, "us-east-1", Source("profile", profile="work"))

    # assess
    assert section == [
        "[profile mfenv-demo]",
        MARKER,
        f"role_arn = {ROLE}",
        "source_profile = work",
        "role_session_name = demo",
        "region = us-east-1",
    ]


def test_a_profile_from_environment_keys_runs_the_credential_process_of_this_python():
    # act
    section = profile_section("demo", ROLE, "eu-west-1", Source("chain"))

    # assess
    assert section[:2] == ["[profile mfenv-demo]", MARKER]
    process = section[2]
    assert process.startswith("credential_process = ")
    assert f" -m mfenv credentials demo --role-arn {ROLE} --region eu-west-1" in process
    assert section[3] == "region = eu-west-1"
    assert not any(line.startswith(("role_arn", "source_profile")) for line in section)


def test_the_profile_is_appended_and_everything_else_is_kept_byte_for_byte(home):
    # prepare
    path = write(home / ".aws" / "config", THEIRS)
    section = profile_section("demo", ROLE, "us-east-1", Source("profile", profile="work"))

    # act
    changed = put(path, section)

    # assess
    text = path.read_text()
    assert changed
    assert text.startswith(THEIRS)
    assert text[len(THEIRS):] == "\n" + "\n".join(section) + "\n"
    assert read_written_profile(path, "mfenv-demo")["source_profile"] == "work"


def test_a_new_config_file_is_readable_by_its_owner_only(home):
    # act
    path = home / ".aws" / "config"
    put(path, profile_section("demo", ROLE, "us-east-1", Source("chain")))

    # assess
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_rewriting_replaces_only_the_section_mfenv_wrote_and_an_unchanged_one_is_left_alone(home):
    # prepare: our section sits between two of the teammate's
    path = write(home / ".aws" / "config", THEIRS)
    put(path, profile_section("demo", ROLE, "us-east-1", Source("chain")))
    with open(path, "a") as config:
        config.write("\n[profile later]\nregion = ap-south-1\n")
    os.chmod(path, 0o640)

    # act
    changed = put(path, profile_section("demo", ROLE, "us-east-1", Source("profile", profile="work")))
    unchanged = put(path, profile_section("demo", ROLE, "us-east-1", Source("profile", profile="work")))

    # assess
    text = path.read_text()
    assert (changed, unchanged) == (True, False)
    assert text.count("[profile mfenv-demo]") == 1
    assert "credential_process" not in text
    assert text.startswith(THEIRS)
    assert text.endswith("source_profile = work\nrole_session_name = demo\nregion = us-east-1\n\n[profile later]\nregion = ap-south-1\n")
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_a_section_mfenv_did_not_write_is_refused_and_left_as_it_was(home):
    # prepare: the teammate's own mfenv-demo profile
    original = THEIRS + "\n[profile mfenv-demo]\nrole_arn = arn:aws:iam::123456789012:role/mine\nsource_profile = work\n"
    path = write(home / ".aws" / "config", original)

    # act
    with pytest.raises(CliError) as refused:
        put(path, profile_section("demo", ROLE, "us-east-1", Source("chain")))

    # assess
    assert refused.value.code == Exit.NOT_OURS
    assert "[profile mfenv-demo]" in refused.value.message and "--force" in refused.value.message
    assert path.read_text() == original
    assert read_written_profile(path, "mfenv-demo") is None


def test_force_replaces_a_section_mfenv_did_not_write(home):
    # prepare
    path = write(home / ".aws" / "config", THEIRS + "\n[profile   mfenv-demo]\nregion = eu-west-1\n")

    # act
    put(path, profile_section("demo", ROLE, "us-east-1", Source("chain")), force=True)

    # assess
    text = path.read_text()
    assert text.count("mfenv-demo]") == 1
    assert MARKER in text and "eu-west-1\n" in text.split("[profile mfenv-demo]")[0]


def test_deleting_the_marker_line_makes_the_section_the_teammates_own(home):
    # prepare: written by mfenv, then the marker removed by hand
    path = home / ".aws" / "config"
    put(path, profile_section("demo", ROLE, "us-east-1", Source("chain")))
    path.write_text(path.read_text().replace(MARKER + "\n", ""))

    # act / assess
    with pytest.raises(CliError) as refused:
        put(path, profile_section("demo", ROLE, "us-east-1", Source("profile", profile="work")))
    assert refused.value.code == Exit.NOT_OURS


def test_a_symlinked_config_is_written_through_the_link(home, tmp_path):
    # prepare: a dotfile manager's link
    target = write(tmp_path / "dotfiles" / "aws-config", THEIRS)
    link = home / ".aws" / "config"
    link.parent.mkdir(parents=True)
    link.symlink_to(target)

    # act
    put(link, profile_section("demo", ROLE, "us-east-1", Source("chain")))

    # assess
    assert link.is_symlink()
    assert "[profile mfenv-demo]" in target.read_text()


# ---- config_<name>.json ----

CONFIG = '{"METAFLOW_DEFAULT_DATASTORE":"s3","METAFLOW_USER":"demo"}'


def test_the_metaflow_config_is_written_exactly_as_served_and_again_only_when_it_changes(home):
    # prepare
    metaflow_home = home / ".metaflowconfig"

    # act
    first = metaflow_config_update(metaflow_home, "demo", CONFIG)
    path = write_metaflow_config(metaflow_home, "demo", CONFIG)
    second = metaflow_config_update(metaflow_home, "demo", CONFIG)
    changed = metaflow_config_update(metaflow_home, "demo", CONFIG.replace("demo", "demo2"))

    # assess
    assert (first, second, changed) == (True, False, True)
    assert path == metaflow_home / "config_demo.json"
    assert path.read_bytes() == CONFIG.encode()
    assert list(json.loads((metaflow_home / ".mfenv-written.json").read_text())) == ["config_demo.json"]


@pytest.mark.parametrize("how", ["written by hand", "edited after mfenv wrote it"])
def test_a_metaflow_config_mfenv_did_not_write_is_refused_unless_forced(home, how):
    # prepare
    metaflow_home = home / ".metaflowconfig"
    if how == "written by hand":
        write(metaflow_home / "config_demo.json", '{"METAFLOW_DEFAULT_DATASTORE": "local"}')
    else:
        write_metaflow_config(metaflow_home, "demo", CONFIG)
        write(metaflow_home / "config_demo.json", CONFIG.replace("s3", "local"))
    before = (metaflow_home / "config_demo.json").read_text()

    # act
    with pytest.raises(CliError) as refused:
        metaflow_config_update(metaflow_home, "demo", CONFIG)
    forced = metaflow_config_update(metaflow_home, "demo", CONFIG, force=True)

    # assess
    assert refused.value.code == Exit.NOT_OURS
    assert "--force" in refused.value.message
    assert (metaflow_home / "config_demo.json").read_text() == before
    assert forced is True
