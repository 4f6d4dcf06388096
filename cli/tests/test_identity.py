"""
Whose credentials mfenv uses, and whether the environment's profile wins over them in the command it runs.
botocore resolves every case here from files and variables alone; nothing is sent anywhere.
"""
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import botocore.session
import pytest

from conftest import write
from mfenv import credential_process
from mfenv.errors import CliError, Exit
from mfenv.files import profile_section, profile_update, read_written_profile, write_profile
from mfenv.identity import Source, child_environment, resolve_user, shell_lines

ROLE = "arn:aws:iam::123456789012:role/mfenv/mfenv-demo-access"
USER_KEY = "AKIAUSERUSERUSERUSER"
PROFILE_KEY = "AKIAPROFILEPROFILEPR"
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def aws_files(home):
    """A default profile and a `work` profile, both with keys, as `aws configure` writes them."""
    write(
        home / ".aws" / "credentials",
        f"[default]\naws_access_key_id = {PROFILE_KEY}\naws_secret_access_key = s\n\n"
        f"[work]\naws_access_key_id = AKIAWORKWORKWORKWORK\naws_secret_access_key = s\n",
    )
    write(home / ".aws" / "config", "[default]\nregion = us-east-1\n\n[profile work]\nregion = eu-west-1\n")
    return home


def written(home):
    path = home / ".aws" / "config"
    return lambda profile: read_written_profile(path, profile)


def resolve(environ, home, profile=None):
    return resolve_user(profile, environ, written(home))


def test_environment_keys_win_over_aws_profile_so_the_source_is_the_chain(aws_files, monkeypatch):
    # prepare: both set, the easy way to be silently someone else
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", USER_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_PROFILE", "work")

    # act
    user = resolve(dict(os.environ), aws_files)

    # assess
    assert user.credentials.access_key == USER_KEY
    assert user.source == Source("chain")


@pytest.mark.parametrize(
    "variables, explicit, expected_profile, expected_key",
    [
        ({}, None, "default", PROFILE_KEY),
        ({"AWS_PROFILE": "work"}, None, "work", "AKIAWORKWORKWORKWORK"),
        # an explicit --profile negates keys in the environment, as botocore does
        ({"AWS_ACCESS_KEY_ID": USER_KEY, "AWS_SECRET_ACCESS_KEY": "s"}, "work", "work", "AKIAWORKWORKWORKWORK"),
    ],
    ids=["default profile", "AWS_PROFILE", "--profile over environment keys"],
)
def test_credentials_of_a_named_profile_make_it_the_source_profile(aws_files, monkeypatch, variables, explicit, expected_profile, expected_key):
    # prepare
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    # act
    user = resolve(dict(os.environ), aws_files, profile=explicit)

    # assess
    assert user.source == Source("profile", profile=expected_profile)
    assert user.credentials.access_key == expected_key


def test_no_credentials_at_all_is_its_own_error(home):
    # act
    with pytest.raises(CliError) as failure:
        resolve(dict(os.environ), home)

    # assess
    assert failure.value.code == Exit.CREDENTIALS
    assert "No AWS credentials found" in failure.value.message


def test_an_unknown_profile_is_a_credentials_error_naming_it(home, monkeypatch):
    # prepare
    monkeypatch.setenv("AWS_PROFILE", "nope")

    # act
    with pytest.raises(CliError) as failure:
        resolve(dict(os.environ), home)

    # assess
    assert failure.value.code == Exit.CREDENTIALS
    assert "nope" in failure.value.message


def test_inside_mfenv_run_the_teammate_is_the_source_of_the_profile_not_the_role(home, monkeypatch):
    # prepare: the environment `mfenv run` gives a command, whose credential process reads MFENV_SOURCE_*
    config = home / ".aws" / "config"
    write_profile(config, profile_update(config, profile_section("demo", ROLE, "us-east-1", Source("chain"))))
    child = child_environment(
        {"AWS_ACCESS_KEY_ID": USER_KEY, "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t", "HOME": str(home)},
        "demo",
        "mfenv-demo",
        Source("chain"),
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in child.items():
        monkeypatch.setenv(name, value)

    # act: mfenv called again in there (say `mfenv list`)
    user = resolve(dict(os.environ), home)

    # assess: the API sees the teammate, with their session token
    frozen = user.credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.token) == (USER_KEY, "t")
    assert user.source == Source("chain")


def test_inside_mfenv_run_with_a_source_profile_the_teammate_is_that_profile(aws_files, monkeypatch):
    # prepare
    config = aws_files / ".aws" / "config"
    write_profile(config, profile_update(config, profile_section("demo", ROLE, "us-east-1", Source("profile", profile="work"))))
    monkeypatch.setenv("AWS_PROFILE", "mfenv-demo")

    # act
    user = resolve(dict(os.environ), aws_files)

    # assess
    assert user.source == Source("profile", profile="work")
    assert user.credentials.access_key == "AKIAWORKWORKWORKWORK"


def test_the_commands_environment_cannot_shadow_the_profile():
    # prepare: keys and both profile variables in the teammate's shell
    environ = {
        "AWS_ACCESS_KEY_ID": USER_KEY,
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "token",
        "AWS_DEFAULT_PROFILE": "work",
        "AWS_PROFILE": "work",
        "PATH": "/bin",
    }

    # act
    chain = child_environment(environ, "demo", "mfenv-demo", Source("chain"))
    profile = child_environment(environ, "demo", "mfenv-demo", Source("profile", profile="work"))

    # assess: no key botocore would read first; AWS_DEFAULT_PROFILE (read before AWS_PROFILE) gone
    for child in (chain, profile):
        assert child["AWS_PROFILE"] == "mfenv-demo"
        assert child["METAFLOW_PROFILE"] == "demo"
        assert child["PATH"] == "/bin"
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"} & set(child)
    # the credential process gets the keys under names nothing else reads; a source profile needs none
    assert {k: v for k, v in chain.items() if k.startswith("MFENV_SOURCE_")} == {
        "MFENV_SOURCE_AWS_ACCESS_KEY_ID": USER_KEY,
        "MFENV_SOURCE_AWS_SECRET_ACCESS_KEY": "secret",
        "MFENV_SOURCE_AWS_SESSION_TOKEN": "token",
    }
    assert not any(k.startswith("MFENV_SOURCE_") for k in profile)


def test_botocore_in_the_commands_environment_takes_the_role_profile(aws_files, monkeypatch):
    # prepare: the role profile, and the command's environment, with keys that would otherwise win
    config = aws_files / ".aws" / "config"
    write_profile(config, profile_update(config, profile_section("demo", ROLE, "us-east-1", Source("profile", profile="work"))))
    child = child_environment({**os.environ, "AWS_ACCESS_KEY_ID": USER_KEY, "AWS_SECRET_ACCESS_KEY": "s"}, "demo", "mfenv-demo", Source("profile", profile="work"))
    monkeypatch.setattr(os, "environ", child)

    # act: what boto3 in the command would resolve (the role is assumed lazily, so nothing is sent)
    credentials = botocore.session.Session().get_credentials()

    # assess
    assert credentials.method == "assume-role"


def test_use_prints_exports_that_move_the_keys_aside_by_name_never_by_value():
    # act
    lines = shell_lines(
        {"AWS_ACCESS_KEY_ID": USER_KEY, "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_PROFILE": "x"},
        "demo",
        "mfenv-demo",
        Source("chain"),
    )

    # assess
    assert lines == [
        "export METAFLOW_PROFILE=demo",
        "export AWS_PROFILE=mfenv-demo",
        'export MFENV_SOURCE_AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"',
        'export MFENV_SOURCE_AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"',
        "unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_PROFILE",
    ]
    assert not any(USER_KEY in line or "secret" in line.replace("SECRET", "") for line in lines)
    assert shell_lines({}, "demo", "mfenv-demo", Source("profile", profile="work")) == lines[:2]


# ---- the credential process ----


def entry(minutes_left: float, key="ASIAROLEROLEROLEROLE"):
    expiration = datetime.now(timezone.utc) + timedelta(minutes=minutes_left)
    return {"Version": 1, "AccessKeyId": key, "SecretAccessKey": "s", "SessionToken": "t", "Expiration": expiration.isoformat(), "RoleArn": ROLE}


def test_a_cached_session_is_served_only_while_botocore_would_not_renew_it_at_once(home):
    # prepare
    environ = {"MFENV_SOURCE_AWS_ACCESS_KEY_ID": USER_KEY}
    path = credential_process.cache_path(environ, ROLE)

    # act / assess
    credential_process.write_cached(path, entry(45))
    assert credential_process.read_cached(path)["AccessKeyId"] == "ASIAROLEROLEROLEROLE"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
    credential_process.write_cached(path, entry(16))
    assert credential_process.read_cached(path) is None
    # another source identity has a cache file of its own
    assert credential_process.cache_path({"MFENV_SOURCE_AWS_ACCESS_KEY_ID": "AKIAOTHER"}, ROLE) != path


def test_forgetting_a_role_removes_its_sessions_and_no_other(home):
    # prepare
    mine = credential_process.cache_path({"AWS_ACCESS_KEY_ID": USER_KEY}, ROLE)
    other_role = ROLE.replace("demo", "other")
    theirs = credential_process.cache_path({"AWS_ACCESS_KEY_ID": USER_KEY}, other_role)
    credential_process.write_cached(mine, entry(45))
    credential_process.write_cached(theirs, {**entry(45), "RoleArn": other_role})

    # act
    credential_process.forget({}, ROLE)

    # assess
    assert (os.path.exists(mine), os.path.exists(theirs)) == (False, True)


def test_without_any_credentials_the_process_says_so_and_fails(home, capsys):
    # act
    code = credential_process.main(["demo", "--role-arn", ROLE, "--region", "us-east-1"], environ={})

    # assess
    assert code == Exit.CREDENTIALS
    assert "mfenv run demo" in capsys.readouterr().err


def test_botocore_reads_the_process_output_as_credentials_it_renews(home, tmp_path):
    # prepare: a profile with the credential process, and a fresh session in its cache (so nothing is sent)
    config = home / ".aws" / "config"
    write_profile(config, profile_update(config, profile_section("demo", ROLE, "us-east-1", Source("chain"))))
    environ = {"MFENV_SOURCE_AWS_ACCESS_KEY_ID": USER_KEY, "MFENV_SOURCE_AWS_SECRET_ACCESS_KEY": "s"}
    credential_process.write_cached(credential_process.cache_path(environ, ROLE), entry(50))

    # act: botocore runs `python -m mfenv credentials ...` itself
    script = (
        "import botocore.session, json\n"
        "c = botocore.session.Session(profile='mfenv-demo').get_credentials()\n"
        "print(json.dumps([c.method, type(c).__name__, c.get_frozen_credentials().access_key]))\n"
    )
    child = {**os.environ, **environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", script], env=child, capture_output=True, text=True, timeout=60)

    # assess: refreshable credentials, so a run longer than the session goes on
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["custom-process", "RefreshableCredentials", "ASIAROLEROLEROLEROLE"]


def test_on_a_cache_miss_the_role_is_assumed_from_the_moved_keys_and_cached(home, capsys):
    # prepare: moto's STS, in this process (the emulator's in-process mode; no server, nothing sent)
    moto = pytest.importorskip("moto")
    environ = {"MFENV_SOURCE_AWS_ACCESS_KEY_ID": USER_KEY, "MFENV_SOURCE_AWS_SECRET_ACCESS_KEY": "s"}

    # act
    with moto.mock_aws():
        code = credential_process.main(["demo", "--role-arn", ROLE, "--region", "us-east-1"], environ=environ)

    # assess: the credential_process format, with an Expiration botocore can parse, and the same answer cached
    answer = json.loads(capsys.readouterr().out)
    assert code == 0
    assert sorted(answer) == ["AccessKeyId", "Expiration", "SecretAccessKey", "SessionToken", "Version"]
    assert answer["AccessKeyId"].startswith("ASIA") and answer["Version"] == 1
    assert datetime.fromisoformat(answer["Expiration"]) > datetime.now(timezone.utc) + timedelta(minutes=30)
    cached = credential_process.read_cached(credential_process.cache_path(environ, ROLE))
    assert cached["AccessKeyId"] == answer["AccessKeyId"] and cached["RoleArn"] == ROLE
