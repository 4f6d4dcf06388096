"""
Compute environments that AWS Batch reports INVALID, for the emulator: moto reports every compute environment
VALID ("Compute environment is available"), whatever happens to it. On AWS a compute environment made with an
instance profile IAM has not finished propagating goes INVALID ("CLIENT_ERROR - Invalid IamInstanceProfile"),
and the provision workflow re-creates it once before rolling back. To prove that path over HTTP:

    POST /_mfenv/batch-status {"computeEnvironment": "<name>", "status": "INVALID",
                               "statusReason": "CLIENT_ERROR - ...", "creations": 1}

The next `creations` (default 1) compute environments created under that name report `status` and
`statusReason` in DescribeComputeEnvironments until they are deleted; one created after that reports what moto
does. POST /moto-api/reset forgets every such request. Imported by moto_server.py for its side effect.
"""
import json
import threading

from moto.batch.models import BatchBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

ROUTE = "/_mfenv/batch-status"
STATUSES = ("CREATING", "UPDATING", "DELETING", "DELETED", "VALID", "INVALID")

_lock = threading.Lock()
# name -> {"status", "statusReason", "creations"}: what the next compute environments of that name report.
_pending = {}

_create = BatchBackend.create_compute_environment
_describe = BatchBackend.describe_compute_environments


def _create_reporting(self, compute_environment_name, *args, **kwargs):
    environment = _create(self, compute_environment_name, *args, **kwargs)
    with _lock:
        pending = _pending.get(compute_environment_name)
        if pending and pending["creations"] > 0:
            pending["creations"] -= 1
            # Kept on the object: a deleted compute environment takes its status with it.
            environment._mfenv_reported = (pending["status"], pending["statusReason"])
    return environment


def _describe_reporting(self, environments=None):
    described = _describe(self, environments)
    for part in described:
        environment = self._compute_environments.get(part["computeEnvironmentArn"])
        reported = getattr(environment, "_mfenv_reported", None)
        if reported:
            part["status"], part["statusReason"] = reported
    return described


BatchBackend.create_compute_environment = _create_reporting
BatchBackend.describe_compute_environments = _describe_reporting


def _answer(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _set_status(environ, start_response):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"null")
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        name = body.get("computeEnvironment")
        status = body.get("status")
        reason = body.get("statusReason", "")
        creations = body.get("creations", 1)
        if not isinstance(name, str) or not name:
            raise ValueError("computeEnvironment must be a compute environment's name")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        if not isinstance(reason, str):
            raise ValueError("statusReason must be a string")
        if not isinstance(creations, int) or isinstance(creations, bool) or creations < 1:
            raise ValueError("creations must be a whole number of at least 1")
    except ValueError as error:
        return _answer(start_response, "400 Bad Request", {"message": str(error)})
    pending = {"computeEnvironment": name, "status": status, "statusReason": reason, "creations": creations}
    with _lock:
        _pending[name] = dict(pending)
    return _answer(start_response, "201 Created", pending)


_dispatch = DomainDispatcherApplication.__call__


def _dispatch_with_status_route(self, environ, start_response):
    path = environ.get("PATH_INFO")
    if path == ROUTE and environ.get("REQUEST_METHOD") == "POST":
        return _set_status(environ, start_response)
    if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
        with _lock:
            _pending.clear()
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _dispatch_with_status_route
