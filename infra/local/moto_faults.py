"""
Fault injection for the emulator: AWS errors on chosen requests, so a test can make any workflow step fail
where moto has no real condition that would make it fail.

    POST   /_mfenv/faults   {"service", "action", "code", "message"?, "status"?, "times"?, "skip"?, "match"?}
    GET    /_mfenv/faults   every fault registered, with how often it was applied ("hits") and passed ("skipped")
    DELETE /_mfenv/faults   forgets every fault (so does POST /moto-api/reset)

A request matches a fault when its service (the SigV4 credential scope: iam, ec2, s3, batch, dynamodb, sts)
and action are the fault's (compared without case) and every `match` substring occurs in its path, query or
body (raw or URL-decoded): name the environment under test there, and only its requests fail. The first
`skip` matching requests pass; the next `times` (default 1) are answered with the error, in the shape the
service's protocol gives errors (query XML for IAM and STS, EC2's own XML, rest-xml for S3, rest-json for
Batch, JSON 1.0 for DynamoDB), so the SDK on the other end raises the very error AWS would have caused.
Then the fault stays listed, spent. Actions: the operation's name (IAM/EC2/STS `Action`, DynamoDB's
X-Amz-Target, Batch's path, S3's REST operation as named in S3_OPERATIONS below, e.g. PutBucketEncryption).

With no fault registered every request goes straight to moto.
"""
import io
import itertools
import json
import re
import threading
import uuid
from urllib.parse import parse_qs, unquote_plus

FAULTS_PATH = "/_mfenv/faults"

_lock = threading.Lock()
_faults = []
_ids = itertools.count(1)

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")

# S3's REST operations on a bucket, by subresource (query key) and method; the rest is decided below.
S3_OPERATIONS = {
    ("tagging", "GET"): "GetBucketTagging",
    ("tagging", "PUT"): "PutBucketTagging",
    ("tagging", "DELETE"): "DeleteBucketTagging",
    ("policy", "GET"): "GetBucketPolicy",
    ("policy", "PUT"): "PutBucketPolicy",
    ("policy", "DELETE"): "DeleteBucketPolicy",
    ("encryption", "GET"): "GetBucketEncryption",
    ("encryption", "PUT"): "PutBucketEncryption",
    ("publicAccessBlock", "GET"): "GetPublicAccessBlock",
    ("publicAccessBlock", "PUT"): "PutPublicAccessBlock",
    ("ownershipControls", "GET"): "GetBucketOwnershipControls",
    ("ownershipControls", "PUT"): "PutBucketOwnershipControls",
    ("versioning", "GET"): "GetBucketVersioning",
    ("versioning", "PUT"): "PutBucketVersioning",
    ("versions", "GET"): "ListObjectVersions",
    ("uploads", "GET"): "ListMultipartUploads",
    ("delete", "POST"): "DeleteObjects",
    ("location", "GET"): "GetBucketLocation",
}
_S3_BUCKET_OPERATIONS = {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket", "GET": "ListObjects"}
_S3_OBJECT_OPERATIONS = {"PUT": "PutObject", "DELETE": "DeleteObject", "HEAD": "HeadObject", "GET": "GetObject", "POST": "CreateMultipartUpload"}


def _s3_operation(method, path, query):
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets"
    if key:
        if "uploadId" in query:
            return "AbortMultipartUpload" if method == "DELETE" else "UploadPart" if method == "PUT" else "CompleteMultipartUpload"
        return _S3_OBJECT_OPERATIONS.get(method, "")
    for subresource in query:
        operation = S3_OPERATIONS.get((subresource, method))
        if operation:
            return operation
    if method == "GET" and query.get("list-type") == ["2"]:
        return "ListObjectsV2"
    return _S3_BUCKET_OPERATIONS.get(method, "")


class _Request:
    """What a fault is matched against: service, action, and the text of path, query and body."""

    def __init__(self, environ):
        scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        self.service = scope.group(1).lower() if scope else ""
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.path = environ.get("PATH_INFO", "")
        self.query_string = environ.get("QUERY_STRING", "")
        query = parse_qs(self.query_string, keep_blank_values=True)
        body = b""
        # S3 bodies (objects) can be large and never decide a match: they are not read.
        if self.service != "s3":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > 0:
                body = environ["wsgi.input"].read(length)
                # moto reads the body again: give it back untouched.
                environ["wsgi.input"] = io.BytesIO(body)
        self.body = body.decode("utf-8", errors="replace")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            self.action = target.rsplit(".", 1)[-1]
        elif self.service == "s3":
            self.action = _s3_operation(self.method, self.path, query)
        elif self.service == "batch":
            self.action = self.path.rstrip("/").rsplit("/", 1)[-1]
        else:
            form = parse_qs(self.body, keep_blank_values=True) if self.body else {}
            self.action = (form.get("Action") or query.get("Action") or [""])[0]
        self.text = "\n".join([self.path, self.query_string, unquote_plus(self.query_string), self.body, unquote_plus(self.body)])

    def matches(self, fault):
        return (
            fault["service"].lower() == self.service
            and fault["action"].lower() == self.action.lower()
            and all(needle in self.text for needle in fault["match"])
        )


def _error_response(fault, request):
    """The status, headers and body AWS sends for this error in the service's protocol."""
    code, message, request_id = fault["code"], fault["message"], str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    service = request.service
    if service == "dynamodb":
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
        headers.append(("Content-Type", "application/x-amz-json-1.0"))
    elif service == "batch":
        body = json.dumps({"__type": code, "message": message})
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    elif service == "s3":
        headers += [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
        # A HEAD answer has no body: the SDK names the error after the status alone, as with AWS.
        body = "" if request.method == "HEAD" else (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{_xml(code)}</Code><Message>{_xml(message)}</Message>'
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    elif service == "ec2":
        headers.append(("Content-Type", "text/xml"))
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{_xml(code)}</Code>'
            f"<Message>{_xml(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
    else:
        headers.append(("Content-Type", "text/xml"))
        kind = "Receiver" if fault["status"] >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="https://{service}.amazonaws.com/doc/"><Error><Type>{kind}</Type><Code>{_xml(code)}</Code>'
            f"<Message>{_xml(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return fault["status"], headers, body.encode("utf-8")


def _xml(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fault_of(spec):
    if not isinstance(spec, dict):
        raise ValueError("a fault is a JSON object")
    for field in ("service", "action", "code"):
        if not isinstance(spec.get(field), str) or not spec[field]:
            raise ValueError(f"a fault needs {field}, a non-empty string")
    match = spec.get("match", [])
    match = [match] if isinstance(match, str) else match
    if not isinstance(match, list) or not all(isinstance(needle, str) and needle for needle in match):
        raise ValueError("match is a non-empty string or a list of them")
    numbers = {"status": spec.get("status", 400), "times": spec.get("times", 1), "skip": spec.get("skip", 0)}
    for field, value in numbers.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{field} is a whole number")
    if not 400 <= numbers["status"] <= 599 or numbers["times"] < 1:
        raise ValueError("status is 400 to 599, times at least 1")
    return {
        "id": next(_ids),
        "service": spec["service"],
        "action": spec["action"],
        "code": spec["code"],
        "message": str(spec.get("message", f"Injected {spec['code']}")),
        "match": match,
        **numbers,
        "hits": 0,
        "skipped": 0,
    }


def _json_answer(start_response, status, document):
    body = json.dumps(document).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _serve_faults(environ, start_response):
    method = environ.get("REQUEST_METHOD")
    if method == "GET":
        with _lock:
            return _json_answer(start_response, "200 OK", {"faults": [dict(fault) for fault in _faults]})
    if method == "DELETE":
        with _lock:
            _faults.clear()
        return _json_answer(start_response, "200 OK", {"faults": []})
    if method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            fault = _fault_of(json.loads(environ["wsgi.input"].read(length) or b"null"))
        except ValueError as error:
            return _json_answer(start_response, "400 Bad Request", {"message": str(error)})
        with _lock:
            _faults.append(fault)
        return _json_answer(start_response, "201 Created", fault)
    return _json_answer(start_response, "405 Method Not Allowed", {"message": "GET, POST or DELETE"})


def _fault_for(request):
    """The fault this request triggers, counting a skipped or applied match; None to let it through."""
    with _lock:
        for fault in _faults:
            if fault["hits"] >= fault["times"] or not request.matches(fault):
                continue
            if fault["skipped"] < fault["skip"]:
                fault["skipped"] += 1
                return None
            fault["hits"] += 1
            return dict(fault)
    return None


def install(application_class):
    """Puts fault injection in front of whatever the application's __call__ is now."""
    dispatch = application_class.__call__

    def with_faults(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == FAULTS_PATH:
            return _serve_faults(environ, start_response)
        if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            with _lock:
                _faults.clear()
        elif _faults:
            request = _Request(environ)
            fault = _fault_for(request)
            if fault is not None:
                status, headers, body = _error_response(fault, request)
                start_response(f"{status} Injected", headers + [("Content-Length", str(len(body)))])
                return [body]
        return dispatch(self, environ, start_response)

    application_class.__call__ = with_faults
