"""
Finding the mfenv API and calling it: every request signed with SigV4 (service execute-api) by botocore,
with the teammate's own credentials; every answer that is not a success turned into a CliError whose
message is the API's problem document in one or two sentences.
"""
import json
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional

import botocore.exceptions
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from . import __version__
from .errors import CliError, Exit
from .identity import frozen

#: The stack output that holds the API's URL (infra/stack.ts).
API_URL_OUTPUT = "ApiUrl"
#: A problem `type` that says the request could not be attributed: a credentials problem, not a refusal.
UNAUTHENTICATED = "urn:mfenv:problem:unauthenticated"
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")

HOW_TO_FIND = (
    "pass --api URL, set MFENV_API, or deploy the stack so that its ApiUrl output exists "
    "(--stack names it, default mfenv, looked up in your current region)"
)


def region_of_url(url: str) -> Optional[str]:
    """The region of an API Gateway URL (https://<id>.execute-api.<region>.amazonaws.com/<stage>/)."""
    match = _EXECUTE_API_HOST.match(urllib.parse.urlsplit(url).hostname or "")
    return match.group(1) if match else None


def find_api_url(
    explicit: Optional[str],
    environ: Mapping[str, str],
    stack: str,
    region: Optional[str],
    cloudformation: Callable[[str], object],
) -> str:
    """
    The API's base URL: --api, else MFENV_API, else the ApiUrl output of the stack in `region`.
    `cloudformation(region)` makes the client (a function, so a test can hand in a stubbed one).
    """
    if explicit:
        return explicit
    if environ.get("MFENV_API"):
        return environ["MFENV_API"]
    if not region:
        raise CliError(
            f"No API URL was given and there is no region to look the {stack} stack up in: {HOW_TO_FIND}; "
            "or give a region (--region, AWS_REGION, or region in your AWS profile).",
            Exit.API_NOT_FOUND,
        )
    try:
        answer = cloudformation(region).describe_stacks(StackName=stack)
    except botocore.exceptions.ClientError as error:
        details = error.response.get("Error", {})
        reason = (
            f"there is no stack {stack} in {region}"
            if "does not exist" in str(details.get("Message", ""))
            else f"looking the stack {stack} up in {region} failed ({details.get('Code')}: {details.get('Message')})"
        )
        raise CliError(f"The mfenv API was not found: {reason}. To use it, {HOW_TO_FIND}.", Exit.API_NOT_FOUND) from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as error:
        raise CliError(f"Could not reach AWS CloudFormation to find the API: {error}", Exit.NETWORK) from None
    for stack_description in answer.get("Stacks", []):
        for output in stack_description.get("Outputs", []) or []:
            if output.get("OutputKey") == API_URL_OUTPUT and output.get("OutputValue"):
                return output["OutputValue"]
    raise CliError(
        f"The mfenv API was not found: the stack {stack} in {region} has no {API_URL_OUTPUT} output. To use it, {HOW_TO_FIND}.",
        Exit.API_NOT_FOUND,
    )


@dataclass
class Response:
    status: int
    headers: Dict[str, str]
    body: object
    text: str

    def retry_after(self) -> Optional[float]:
        value = self.headers.get("retry-after")
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None


@dataclass
class Problem:
    """An RFC 9457 answer of the API (or of API Gateway, which the stack rewrites the same way)."""

    status: int
    title: str
    detail: str
    type: str = ""
    request_id: Optional[str] = None
    errors: list = field(default_factory=list)

    def sentence(self) -> str:
        """One or two sentences: `title: detail`, plus the fields a validation error names."""
        text = f"{self.title}: {self.detail}" if self.detail else self.title
        # The fields a validation problem names, unless its detail already says the same.
        extra = [
            f"{item.get('field')}: {item.get('message')}"
            for item in self.errors
            if isinstance(item, dict) and str(item.get("message")) not in text
        ]
        if extra:
            text += " (" + "; ".join(extra) + ")"
        return " ".join(text.split())

    def exit_code(self) -> Exit:
        return Exit.CREDENTIALS if self.type == UNAUTHENTICATED else Exit.REFUSED


def problem_of(response: Response) -> Optional[Problem]:
    """The problem document of an answer, if it is one."""
    body = response.body
    if not isinstance(body, dict) or not (body.get("title") or body.get("detail")):
        return None
    return Problem(
        status=response.status,
        title=str(body.get("title") or f"HTTP {response.status}"),
        detail=str(body.get("detail") or ""),
        type=str(body.get("type") or ""),
        request_id=body.get("requestId") or response.headers.get("x-amzn-requestid"),
        errors=body.get("errors") if isinstance(body.get("errors"), list) else [],
    )


def error_of(response: Response, url: str) -> CliError:
    """What to tell a person about an answer that is not a success."""
    problem = problem_of(response)
    if problem:
        return CliError(problem.sentence(), problem.exit_code())
    if 400 <= response.status < 500:
        # Not a problem document: whatever answered is not the mfenv API (a wrong URL or stage).
        return CliError(
            f"{url} answered HTTP {response.status} without an explanation: is it the mfenv API? "
            f"Check --api or MFENV_API (the stack's ApiUrl output, stage included).",
            Exit.API_NOT_FOUND,
        )
    return CliError(f"The API failed (HTTP {response.status} at {url}); try again later.", Exit.REFUSED)


#: Answers worth repeating as they are (throttled, or the API or a workflow momentarily unavailable).
_RETRYABLE = {429, 502, 503, 504}


class Api:
    """The mfenv API at `base_url`, called as the teammate."""

    def __init__(self, base_url: str, credentials, region: str, timeout: float = 30.0, sleep=time.sleep):
        self.base_url = base_url.rstrip("/") + "/"
        self.credentials = credentials
        self.region = region
        self.timeout = timeout
        self.sleep = sleep

    def url_of(self, path: str, query: Optional[Dict[str, str]] = None) -> str:
        url = urllib.parse.urljoin(self.base_url, path.lstrip("/"))
        return url + ("?" + urllib.parse.urlencode(query) if query else "")

    def request(
        self,
        method: str,
        path: str,
        query: Optional[Dict[str, str]] = None,
        body: Optional[dict] = None,
        ok=(200, 201, 202),
        attempts: int = 3,
    ) -> Response:
        """One call; repeated on throttling and momentary unavailability (POSTs carry an Idempotency-Key)."""
        url = self.url_of(path, query)
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": f"mfenv-cli/{__version__}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if method in ("POST", "PATCH"):
            # The API replays the first answer for the same key and body, so a repeated POST creates nothing twice
            # (and a repeated PATCH gets its 202 again rather than a 409 from the update it started).
            headers["Idempotency-Key"] = str(uuid.uuid4())
        for attempt in range(1, attempts + 1):
            response = self._send(method, url, data, headers)
            if response.status in ok:
                return response
            # A POST is repeated only when it was throttled before reaching mfenv; a 5xx may have done part
            # of the work, and a person should see that answer rather than a later "name taken".
            retryable = response.status == 429 if method in ("POST", "PATCH") else response.status in _RETRYABLE
            if retryable and attempt < attempts:
                self.sleep(min(response.retry_after() or attempt * 2.0, 20.0))
                continue
            raise error_of(response, url)
        raise AssertionError("unreachable")

    def _send(self, method: str, url: str, data: Optional[bytes], headers: Dict[str, str]) -> Response:
        keys = frozen(self.credentials)
        signed = AWSRequest(method=method, url=url, data=data, headers=dict(headers))
        SigV4Auth(keys, "execute-api", self.region).add_auth(signed)
        prepared = signed.prepare()
        request = urllib.request.Request(
            prepared.url, data=prepared.body, headers=dict(prepared.headers.items()), method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                status, answer_headers, raw = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            status, answer_headers, raw = error.code, error.headers, error.read()
        except urllib.error.URLError as error:
            raise network_error(url, error.reason) from None
        except (socket.timeout, TimeoutError, ConnectionError, ssl.SSLError) as error:
            raise network_error(url, error) from None
        text = raw.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return Response(status, {key.lower(): value for key, value in answer_headers.items()}, parsed, text)


def network_error(url: str, reason) -> CliError:
    """A connection problem as a sentence naming the address and what went wrong."""
    host = urllib.parse.urlsplit(url).netloc
    if isinstance(reason, ConnectionRefusedError):
        what = "the connection was refused (nothing listens there; in local mode, is npm start running?)"
    elif isinstance(reason, socket.gaierror):
        what = "its name does not resolve (check the URL and your network)"
    elif isinstance(reason, (socket.timeout, TimeoutError)):
        what = "it did not answer in time"
    elif isinstance(reason, ssl.SSLError):
        what = f"the TLS connection failed ({reason})"
    else:
        what = str(reason)
    return CliError(f"Could not reach the mfenv API at {host}: {what}.", Exit.NETWORK)
