"""The command as a person meets it: exit codes, one-line errors, and what use and run do, with a scripted API."""
import json
import os

import pytest

import mfenv.cli
from conftest import write
from mfenv.api import Response, error_of
from mfenv.cli import main
from mfenv.errors import EXIT_CODES_HELP, Exit

ROLE = "arn:aws:iam::123456789012:role/mfenv/mfenv-demo-access"
CONFIG_TEXT = '{"METAFLOW_DEFAULT_DATASTORE":"s3","METAFLOW_DATASTORE_SYSROOT_S3":"s3://mfenv-demo-1/metaflow","METAFLOW_USER":"demo"}'
USER_KEY = "AKIAUSERUSERUSERUSER"


def environment(status="READY"):
    return {"name": "demo", "status": status, "statusReason": None, "region": "eu-west-1", "owner": "arn:aws:iam::123456789012:user/alice",
            "spec": {"maxVcpus": 4, "gpu": False}, "resources": {"bucket": "mfenv-demo-1", "accessRoleArn": ROLE}}


NOT_FOUND = Response(404, {}, {"type": "urn:mfenv:problem:environment-not-found", "title": "Environment not found", "status": 404,
                               "detail": 'You have no environment named "demo". GET /environments lists yours; POST /environments creates one.'}, "")


class ScriptedApi:
    """Stands in for mfenv.api.Api: answers by method and path, and fails as the real one does."""

    routes = {}
    calls = []

    def __init__(self, url, credentials, region, **_):
        self.url, self.credentials, self.region = url, credentials, region

    def request(self, method, path, query=None, body=None, ok=(200, 201, 202), **_):
        ScriptedApi.calls.append((method, path, query, body))
        response = ScriptedApi.routes[(method, path)]
        if response.status not in ok:
            raise error_of(response, self.url + path)
        return response


@pytest.fixture
def api(monkeypatch):
    ScriptedApi.routes = {
        ("GET", "/environments/demo"): Response(200, {}, environment(), ""),
        ("GET", "/environments/demo/config"): Response(200, {}, json.loads(CONFIG_TEXT), CONFIG_TEXT),
    }
    ScriptedApi.calls = []
    monkeypatch.setattr(mfenv.cli, "Api", ScriptedApi)
    return ScriptedApi


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", USER_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


def mfenv_(capsys, *argv):
    code = main(list(argv), environ=dict(os.environ))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert EXIT_CODES_HELP in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["run", "demo"], ["show", "demo", "--", "ls"], ["create"]], ids=["run without command", "command after show", "no name"])
def test_a_wrong_command_line_exits_2(capsys, argv):
    with pytest.raises(SystemExit) as done:
        main(argv, environ={})
    assert done.value.code == Exit.USAGE
    assert "usage: mfenv" in capsys.readouterr().err


def test_no_credentials_exit_5_with_one_line(capsys):
    code, out, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "list")
    assert (code, out) == (Exit.CREDENTIALS, "")
    assert err.count("\n") == 1 and err.startswith("mfenv: No AWS credentials found.")


def test_no_api_anywhere_exits_6_naming_the_three_ways(capsys, keys, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    code, _, err = mfenv_(capsys, "list")
    assert code == Exit.API_NOT_FOUND
    assert "--api URL" in err and "MFENV_API" in err and "ApiUrl" in err


def test_someone_elses_environment_is_one_not_found_line_and_exit_1(capsys, keys, api):
    # prepare
    api.routes[("GET", "/environments/demo")] = NOT_FOUND

    # act
    code, out, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "show", "demo")

    # assess
    assert (code, out) == (Exit.REFUSED, "")
    assert err == 'mfenv: Environment not found: You have no environment named "demo". GET /environments lists yours; POST /environments creates one.\n'


def test_an_unexpected_failure_is_a_sentence_not_a_traceback(capsys, keys, api, monkeypatch):
    # prepare
    def broken(*_, **__):
        raise ValueError("something odd")

    monkeypatch.setattr(mfenv.cli, "cmd_list", broken)

    # act
    code, _, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "list")

    # assess
    assert code == Exit.REFUSED
    assert "Traceback" not in err
    assert err.startswith("mfenv: unexpected error (ValueError: something odd); MFENV_DEBUG=1")


def test_use_writes_both_files_and_prints_the_exports(capsys, keys, api, home):
    # act
    code, out, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "use", "demo")

    # assess: stdout is only what `eval "$(mfenv use demo)"` runs; the keys are moved aside by name
    assert code == Exit.OK
    assert out.splitlines() == [
        "export METAFLOW_PROFILE=demo",
        "export AWS_PROFILE=mfenv-demo",
        'export MFENV_SOURCE_AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"',
        'export MFENV_SOURCE_AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"',
        "unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY",
    ]
    assert (home / ".metaflowconfig" / "config_demo.json").read_text() == CONFIG_TEXT
    config = (home / ".aws" / "config").read_text()
    assert "[profile mfenv-demo]" in config and f"--role-arn {ROLE} --region eu-west-1" in config
    assert "Wrote" in err


def test_use_refuses_a_profile_it_did_not_write_and_writes_nothing(capsys, keys, api, home):
    # prepare
    original = "[profile mfenv-demo]\nregion = us-east-1\n"
    write(home / ".aws" / "config", original)

    # act
    code, out, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "use", "demo")

    # assess
    assert (code, out) == (Exit.NOT_OURS, "")
    assert "--force" in err
    assert (home / ".aws" / "config").read_text() == original
    assert not (home / ".metaflowconfig" / "config_demo.json").exists()


def test_use_of_an_environment_that_is_not_ready_says_so(capsys, keys, api):
    api.routes[("GET", "/environments/demo")] = Response(200, {}, environment("CREATING"), "")
    code, _, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "use", "demo")
    assert code == Exit.REFUSED
    assert "demo is CREATING, not READY" in err


def test_run_starts_the_command_with_the_profile_and_without_the_keys(capsys, keys, api, home, monkeypatch):
    # prepare: catch the exec
    started = {}
    monkeypatch.setattr(os, "execvpe", lambda file, args, env: started.update(file=file, args=args, env=env))
    write(home / ".aws" / "config", "[profile work]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_DEFAULT_PROFILE", "work")

    # act
    main(["--api", "http://127.0.0.1:9", "run", "demo", "--", "python", "flow.py", "run", "--", "x"], environ=dict(os.environ))

    # assess
    env = started["env"]
    assert started["args"] == ["python", "flow.py", "run", "--", "x"]
    assert (env["AWS_PROFILE"], env["METAFLOW_PROFILE"]) == ("mfenv-demo", "demo")
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_PROFILE"} & set(env)
    assert env["MFENV_SOURCE_AWS_ACCESS_KEY_ID"] == USER_KEY
    assert (home / ".metaflowconfig" / "config_demo.json").read_text() == CONFIG_TEXT


def test_create_sends_the_options_and_without_wait_says_how_to_follow(capsys, keys, api):
    # prepare
    api.routes[("POST", "/environments")] = Response(202, {"retry-after": "10"}, environment("CREATING"), "")

    # act
    code, out, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "create", "demo", "--max-vcpus", "8", "--no-gpu", "--json")

    # assess
    assert code == Exit.OK
    assert api.calls == [("POST", "/environments", None, {"name": "demo", "maxVcpus": 8, "gpu": False})]
    assert json.loads(out)["status"] == "CREATING"


def test_create_with_scheduling_asks_for_it_and_show_names_the_state_machines(capsys, keys, api):
    # prepare
    scheduled = {
        **environment("READY"),
        "spec": {"maxVcpus": 4, "gpu": False, "scheduling": True},
        "resources": {"bucket": "mfenv-demo-1", "accessRoleArn": ROLE, "sfnStateMachinePrefix": "mfenv-demo"},
    }
    api.routes[("POST", "/environments")] = Response(202, {"retry-after": "10"}, environment("CREATING"), "")
    api.routes[("GET", "/environments/demo")] = Response(200, {}, scheduled, "")

    # act
    created = mfenv_(capsys, "--api", "http://127.0.0.1:9", "create", "demo", "--scheduling", "--json")
    shown = mfenv_(capsys, "--api", "http://127.0.0.1:9", "show", "demo")

    # assess
    assert created[0] == Exit.OK
    assert api.calls[0] == ("POST", "/environments", None, {"name": "demo", "scheduling": True})
    assert shown[0] == Exit.OK
    assert "scheduling   yes" in shown[1]
    assert "mfenv-demo_<FlowName>" in shown[1]


def test_create_prints_the_warnings_of_the_preflight_and_show_repeats_them(capsys, keys, api):
    # prepare
    warned = {**environment("CREATING"), "warnings": ["GPU jobs cannot start: the Spot quota L-3819A6DF is 0 vCPUs."]}
    api.routes[("POST", "/environments")] = Response(202, {"retry-after": "10"}, warned, "")
    api.routes[("GET", "/environments/demo")] = Response(200, {}, warned, "")

    # act
    code, _, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "create", "demo")
    shown_code, shown, _ = mfenv_(capsys, "--api", "http://127.0.0.1:9", "show", "demo")

    # assess
    assert (code, shown_code) == (Exit.OK, Exit.OK)
    assert err.splitlines()[0] == "warning: GPU jobs cannot start: the Spot quota L-3819A6DF is 0 vCPUs."
    assert "  warning: GPU jobs cannot start: the Spot quota L-3819A6DF is 0 vCPUs." in shown.splitlines()


def test_create_without_warnings_prints_none(capsys, keys, api):
    # prepare
    api.routes[("POST", "/environments")] = Response(202, {"retry-after": "10"}, environment("CREATING"), "")
    # act
    code, _, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "create", "demo")
    # assess
    assert code == Exit.OK
    assert "warning" not in err


def test_delete_with_purge_asks_for_it(capsys, keys, api):
    api.routes[("DELETE", "/environments/demo")] = Response(202, {}, environment("DELETING"), "")
    code, _, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "delete", "demo", "--purge")
    assert code == Exit.OK
    assert api.calls == [("DELETE", "/environments/demo", {"purge": "true"}, None)]
    assert "demo is DELETING" in err


def test_options_are_accepted_after_the_command_too(capsys, keys, api):
    code, out, _ = mfenv_(capsys, "show", "demo", "--api", "http://127.0.0.1:9", "--json")
    assert code == Exit.OK
    assert json.loads(out)["name"] == "demo"


# ---- resize ----


class _Clock:
    """Time that passes only when slept: a wait runs at once, at the pace it would keep."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def instant_waits(monkeypatch):
    clock = _Clock()
    real = mfenv.cli.wait_for
    monkeypatch.setattr(mfenv.cli, "wait_for", lambda *args, **kwargs: real(*args, clock=clock, sleep=clock.sleep, **kwargs))


def resized(spec, status="READY", reason=None):
    return {**environment(status), "spec": spec, "statusReason": reason}


def test_resize_sends_only_what_was_given_and_without_wait_says_how_to_follow(capsys, keys, api):
    # prepare
    api.routes[("PATCH", "/environments/demo")] = Response(202, {"retry-after": "10"}, environment("UPDATING"), "")

    # act
    code, _, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "resize", "demo", "--max-vcpus", "32", "--no-gpu", "--scheduling")

    # assess
    assert code == Exit.OK
    assert api.calls == [("PATCH", "/environments/demo", None, {"maxVcpus": 32, "gpu": False, "scheduling": True})]
    assert "demo is UPDATING" in err


def test_resize_with_nothing_to_change_is_a_usage_error_and_calls_nothing(capsys, keys, api):
    # act
    code, _, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "resize", "demo")

    # assess
    assert code == Exit.USAGE
    assert api.calls == []
    assert "--max-vcpus" in err


def test_resize_to_what_it_already_has_says_so_and_exits_0(capsys, keys, api):
    # prepare
    api.routes[("PATCH", "/environments/demo")] = Response(200, {}, environment("READY"), "")

    # act
    code, _, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "resize", "demo", "--max-vcpus", "4", "--wait")

    # assess
    assert code == Exit.OK
    assert "nothing to change" in err
    assert [call[0] for call in api.calls] == ["PATCH"]


def test_resize_wait_ends_ok_when_the_new_spec_is_in_force(capsys, keys, api, instant_waits):
    # prepare
    api.routes[("PATCH", "/environments/demo")] = Response(202, {"retry-after": "10"}, environment("UPDATING"), "")
    api.routes[("GET", "/environments/demo")] = Response(200, {}, resized({"maxVcpus": 32, "gpu": True}), "")

    # act
    code, out, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "resize", "demo", "--max-vcpus", "32", "--gpu", "--wait", "--json")

    # assess
    assert code == Exit.OK
    assert json.loads(out)["spec"] == {"maxVcpus": 32, "gpu": True}
    assert "demo is READY" in err


def test_resize_wait_exits_3_with_the_reason_when_the_change_was_undone(capsys, keys, api, instant_waits):
    # prepare: READY again, with the previous spec and the workflow's reason
    reason = "Resizing to maxVcpus 32, gpu false, scheduling false failed: AWS said no. Nothing was changed."
    api.routes[("PATCH", "/environments/demo")] = Response(202, {"retry-after": "10"}, environment("UPDATING"), "")
    api.routes[("GET", "/environments/demo")] = Response(200, {}, resized({"maxVcpus": 4, "gpu": False}, reason=reason), "")

    # act
    code, _, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "resize", "demo", "--max-vcpus", "32", "--wait")

    # assess
    assert code == Exit.FAILED
    assert f"demo was not resized: {reason}" in err


def test_resize_refused_while_creating_is_one_line_and_exit_1(capsys, keys, api):
    # prepare
    api.routes[("PATCH", "/environments/demo")] = Response(409, {}, {
        "type": "urn:mfenv:problem:environment-state-conflict", "title": "The environment is busy or in the wrong state", "status": 409,
        "detail": 'The environment "demo" is CREATING, so it cannot be changed now: it is still being created.'}, "")

    # act
    code, _, err = mfenv_(capsys, "--api", "http://127.0.0.1:9", "resize", "demo", "--max-vcpus", "32")

    # assess
    assert code == Exit.REFUSED
    assert "is CREATING" in err
    assert "Traceback" not in err
