"""Schemathesis hooks: every request it sends is signed with AWS Signature Version 4 (service execute-api),
as a teammate's SigV4 client signs it, so the contract test exercises the API rather than its refusals.

Loaded with SCHEMATHESIS_HOOKS=schemathesis_sigv4 (this folder on PYTHONPATH). The caller's keys come from
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for temporary credentials, AWS_SESSION_TOKEN; the region from
AWS_REGION.

The signature is made by botocore over the request exactly as `requests` prepared it (final URL with its
query, headers, body bytes), as the last step before it is sent: whatever schemathesis generated is signed.
"""

import os

import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "execute-api"
# Headers the signature itself sets: a value schemathesis generated for them is replaced, not signed.
SIGNATURE_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")


class SigV4(requests.auth.AuthBase):
    def __init__(self, credentials: Credentials, region: str) -> None:
        self.credentials = credentials
        self.region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        for name in SIGNATURE_HEADERS:
            request.headers.pop(name, None)
        signable = AWSRequest(method=request.method, url=request.url, data=request.body or b"", headers=dict(request.headers))
        SigV4Auth(self.credentials, SERVICE, self.region).add_auth(signable)
        for name in SIGNATURE_HEADERS:
            if name in signable.headers:
                request.headers[name] = signable.headers[name]
        return request


def _from_environment() -> SigV4:
    missing = [name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION") if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"schemathesis_sigv4 needs {', '.join(missing)} to sign requests")
    credentials = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], os.environ.get("AWS_SESSION_TOKEN"))
    return SigV4(credentials, os.environ["AWS_REGION"])


schemathesis.auth.set_from_requests(_from_environment())
