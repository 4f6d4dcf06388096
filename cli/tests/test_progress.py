"""--wait: the pace of polling, what is shown, and how each ending exits. Time is simulated."""
import io

import pytest

from mfenv.api import Response
from mfenv.errors import CliError, Exit
from mfenv.progress import Display, wait_for


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class FakeApi:
    """Answers GET /environments/{name} from a script, one answer per poll; the clock says when it was asked."""

    def __init__(self, clock, answers):
        self.clock = clock
        self.answers = list(answers)
        self.asked_at = []

    def request(self, method, path, ok=(200,), **_):
        self.asked_at.append(self.clock() - 1000.0)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def env(status, step=None, reason=None):
    body = {"name": "demo", "status": status, "statusReason": reason}
    if step:
        body["progress"] = {"step": step, "startedAt": "2026-01-01T00:00:00Z"}
    return body


def ok(body, retry_after=None):
    return Response(200, {"retry-after": str(retry_after)} if retry_after else {}, body, "")


class Terminal(io.StringIO):
    """A stream that says it is UTF-8, as a terminal's usually does (StringIO says nothing)."""

    encoding = "utf-8"


def run(answers, operation="create", first=None, timeout=900, live=False):
    clock = Clock()
    api = FakeApi(clock, answers)
    stream = Terminal()
    display = Display("demo", stream, live=live, clock=clock)
    first = first or Response(202, {"retry-after": "10"}, env("CREATING" if operation == "create" else "DELETING"), "")
    code, last = wait_for(api, "demo", operation, first, timeout, display, clock=clock, sleep=clock.sleep)
    return code, last, stream.getvalue(), api


def test_polls_at_the_pace_the_api_asks_and_prints_one_line_per_change():
    # act
    code, last, output, api = run([
        ok(env("CREATING", "creating the bucket and roles")),
        ok(env("CREATING", "creating the bucket and roles"), retry_after=5),
        ok(env("CREATING", "waiting for the compute environment")),
        ok(env("READY")),
    ])

    # assess
    assert code == Exit.OK and last["status"] == "READY"
    assert api.asked_at == [10, 20, 25, 30]  # Retry-After 10 from the POST, then 5 once the API says so
    assert output.splitlines() == [
        "[0:00] demo CREATING",
        "[0:10] demo CREATING · creating the bucket and roles",
        "[0:25] demo CREATING · waiting for the compute environment",
        "demo is READY after 0:30.",
    ]


def test_a_failed_create_exits_3_with_the_reason():
    code, _, output, _ = run([ok(env("CREATE_FAILED", reason="The compute environment is INVALID: no subnets."))])
    assert code == Exit.FAILED
    assert output.splitlines()[-1] == "mfenv: demo is CREATE_FAILED after 0:10: The compute environment is INVALID: no subnets."


def test_a_failed_delete_exits_3_with_the_reason():
    code, _, output, _ = run([ok(env("DELETE_FAILED", reason="The queue could not be deleted."))], operation="delete")
    assert code == Exit.FAILED
    assert "DELETE_FAILED" in output and "The queue could not be deleted." in output


def test_giving_up_exits_4_and_says_the_change_goes_on():
    # act
    code, last, output, api = run([ok(env("CREATING"))] * 10, timeout=25)

    # assess
    assert code == Exit.TIMEOUT and last["status"] == "CREATING"
    assert api.asked_at == [10, 20, 25]  # a last look when the time is up
    assert "gave up waiting after 0:25" in output and "mfenv show demo" in output


def test_a_deleted_environment_that_is_gone_from_the_registry_counts_as_deleted():
    code, last, _, _ = run([Response(404, {}, {"title": "Environment not found"}, "")], operation="delete")
    assert (code, last["status"]) == (Exit.OK, "DELETED")


def test_a_dropped_connection_is_retried_until_the_timeout():
    code, _, output, api = run([CliError("Could not reach", Exit.NETWORK), ok(env("READY"))])
    assert code == Exit.OK
    assert "connection lost, retrying" in output
    assert len(api.asked_at) == 2


def test_another_error_while_waiting_stops_the_wait():
    with pytest.raises(CliError) as failure:
        run([CliError("Credentials expired: refresh them", Exit.CREDENTIALS)])
    assert failure.value.code == Exit.CREDENTIALS


def test_on_a_terminal_one_line_is_redrawn_with_a_spinner_step_and_elapsed_time():
    # act
    code, _, output, _ = run([ok(env("CREATING", "creating the job queue")), ok(env("READY"))], live=True)

    # assess: carriage returns, no new line until the end
    frames = output.split("\r\x1b[2K")
    assert code == Exit.OK
    assert output.count("\n") == 1 and output.endswith("demo is READY after 0:20.\n")
    assert any("demo CREATING" in frame and "0:05" in frame for frame in frames)
    assert any("creating the job queue" in frame and "0:15" in frame for frame in frames)
    assert len({frame[:1] for frame in frames if frame.strip() and "READY" not in frame}) > 1  # the spinner turns
