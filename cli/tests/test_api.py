"""Finding the API, signing requests to it, and turning its answers into sentences and exit codes."""
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import botocore.session
import pytest
from botocore.credentials import Credentials
from botocore.stub import Stubber

from mfenv.api import Api, Problem, Response, error_of, find_api_url, region_of_url
from mfenv.errors import CliError, Exit

API_URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod/"


def cloudformation_answering(answer=None, error_code=None, error_message=None):
    """
    A CloudFormation client whose DescribeStacks answer is given. A botocore Stubber, not the emulator: the
    project's emulator is installed without moto's CloudFormation extras, and what is under test is only
    the order of the look-ups and the reading of one answer (the stack's outputs are tested in test/infra).
    """
    calls = []

    def make(region):
        client = botocore.session.Session().create_client(
            "cloudformation", region_name=region, aws_access_key_id="AKIA", aws_secret_access_key="s"
        )
        stubber = Stubber(client)
        if error_code:
            stubber.add_client_error("describe_stacks", service_error_code=error_code, service_message=error_message, expected_params={"StackName": "mfenv"})
        elif answer is not None:
            stubber.add_response("describe_stacks", answer, expected_params={"StackName": "mfenv"})
        stubber.activate()
        calls.append(region)
        return client

    make.calls = calls
    return make


def stack(outputs):
    return {"Stacks": [{"StackName": "mfenv", "CreationTime": "2024-01-01T00:00:00Z", "StackStatus": "CREATE_COMPLETE", "Outputs": outputs}]}


def test_api_flag_wins_over_the_variable_and_the_stack():
    cloudformation = cloudformation_answering()
    assert find_api_url("http://127.0.0.1:3000", {"MFENV_API": "http://other"}, "mfenv", "us-east-1", cloudformation) == "http://127.0.0.1:3000"
    assert cloudformation.calls == []


def test_the_variable_wins_over_the_stack():
    cloudformation = cloudformation_answering()
    assert find_api_url(None, {"MFENV_API": "http://127.0.0.1:3000"}, "mfenv", "us-east-1", cloudformation) == "http://127.0.0.1:3000"
    assert cloudformation.calls == []


def test_else_the_stacks_api_url_output_in_the_current_region():
    # prepare
    cloudformation = cloudformation_answering(stack([{"OutputKey": "Region", "OutputValue": "eu-west-1"}, {"OutputKey": "ApiUrl", "OutputValue": API_URL}]))

    # act
    url = find_api_url(None, {}, "mfenv", "eu-west-1", cloudformation)

    # assess
    assert url == API_URL
    assert cloudformation.calls == ["eu-west-1"]


@pytest.mark.parametrize(
    "cloudformation, region, reason",
    [
        (cloudformation_answering(error_code="ValidationError", error_message="Stack with id mfenv does not exist"), "eu-west-1", "there is no stack mfenv in eu-west-1"),
        (cloudformation_answering(stack([{"OutputKey": "Region", "OutputValue": "eu-west-1"}])), "eu-west-1", "has no ApiUrl output"),
        (cloudformation_answering(error_code="AccessDenied", error_message="not allowed"), "eu-west-1", "AccessDenied: not allowed"),
        (cloudformation_answering(), None, "no region to look the mfenv stack up in"),
    ],
    ids=["no stack", "no output", "refused", "no region"],
)
def test_without_any_of_the_three_the_error_names_all_three_ways(cloudformation, region, reason):
    # act
    with pytest.raises(CliError) as failure:
        find_api_url(None, {}, "mfenv", region, cloudformation)

    # assess
    assert failure.value.code == Exit.API_NOT_FOUND
    assert reason in failure.value.message
    for way in ("--api URL", "MFENV_API", "ApiUrl output"):
        assert way in failure.value.message


def test_the_region_of_an_api_gateway_url():
    assert region_of_url(API_URL) == "eu-west-1"
    assert region_of_url("http://127.0.0.1:3000") is None
    assert region_of_url("https://api.example.com/mfenv/") is None


# ---- answers ----


def answer(status, body, headers=None):
    return Response(status, headers or {}, body, json.dumps(body))


def test_a_problem_is_one_line_title_then_detail():
    # prepare
    response = answer(409, {"type": "urn:mfenv:problem:name-taken", "title": "The environment name is taken", "status": 409,
                            "detail": 'The environment "demo" already exists and is READY:\n DELETE it first.'})

    # act
    error = error_of(response, "http://127.0.0.1:3000/environments")

    # assess
    assert error.message == 'The environment name is taken: The environment "demo" already exists and is READY: DELETE it first.'
    assert error.code == Exit.REFUSED


def test_a_validation_problem_names_its_fields_unless_the_detail_already_does():
    problem = Problem(400, "The request is not valid", "The environment request is not valid: maxVcpus must be at least 1.",
                      errors=[{"field": "maxVcpus", "message": "must be at least 1"}, {"field": "gpu", "message": "must be true or false"}])
    assert problem.sentence() == "The request is not valid: The environment request is not valid: maxVcpus must be at least 1. (gpu: must be true or false)"


def test_an_unattributable_request_is_a_credentials_problem():
    # API Gateway's EXPIRED_TOKEN answer, as the stack rewrites it
    response = answer(403, {"type": "urn:mfenv:problem:unauthenticated", "title": "Credentials expired", "status": 403,
                            "detail": "Your credentials or the request signature have expired: refresh your AWS credentials and sign the request again.",
                            "gatewayMessage": "The security token included in the request is expired"})
    error = error_of(response, API_URL)
    assert error.code == Exit.CREDENTIALS
    assert error.message.startswith("Credentials expired: ")


def test_a_404_that_is_not_a_problem_means_the_url_is_not_the_api():
    error = error_of(Response(404, {}, None, "<html>Not Found</html>"), "http://127.0.0.1:8080/environments")
    assert error.code == Exit.API_NOT_FOUND
    assert "is it the mfenv API?" in error.message


# ---- the wire: a server on 127.0.0.1 ----


class Recorder(BaseHTTPRequestHandler):
    answers = []
    seen = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        Recorder.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length).decode()})
        status, body, headers = Recorder.answers.pop(0)
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.answers, Recorder.seen = [], []
    httpd = HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/local/"
    httpd.shutdown()
    httpd.server_close()


def test_requests_are_signed_for_execute_api_with_the_session_token(server):
    # prepare
    Recorder.answers = [(202, {"name": "demo", "status": "CREATING"}, {"Retry-After": "10"})]
    api = Api(server, Credentials("ASIATEMPTEMPTEMPTEMP", "secret", "session-token"), "eu-west-1")

    # act
    response = api.request("POST", "/environments", body={"name": "demo"}, ok=(202,))

    # assess
    request = Recorder.seen[0]
    assert (response.status, response.retry_after()) == (202, 10.0)
    assert request["path"] == "/local/environments"
    assert request["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIATEMPTEMPTEMPTEMP/")
    assert "/eu-west-1/execute-api/aws4_request" in request["headers"]["Authorization"]
    assert request["headers"]["X-Amz-Security-Token"] == "session-token"
    assert request["headers"]["Idempotency-Key"]
    assert json.loads(request["body"]) == {"name": "demo"}


def test_throttling_is_retried_after_the_time_asked_for(server):
    # prepare
    slept = []
    Recorder.answers = [
        (429, {"type": "urn:mfenv:problem:throttled", "title": "Too many requests", "detail": "wait"}, {"Retry-After": "2"}),
        (200, {"environments": []}, {}),
    ]
    api = Api(server, Credentials("AKIA", "s"), "us-east-1", sleep=slept.append)

    # act
    response = api.request("GET", "/environments")

    # assess
    assert (response.status, slept, len(Recorder.seen)) == (200, [2.0], 2)


def test_a_refused_connection_is_a_network_error_naming_the_address():
    # prepare: a port nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = Api(f"http://127.0.0.1:{port}", Credentials("AKIA", "s"), "us-east-1")

    # act
    with pytest.raises(CliError) as failure:
        api.request("GET", "/environments")

    # assess
    assert failure.value.code == Exit.NETWORK
    assert f"127.0.0.1:{port}" in failure.value.message and "refused" in failure.value.message
