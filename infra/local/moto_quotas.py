"""
EC2 Spot vCPU quotas for the emulator's Service Quotas, which knows only the `vpc` service.

The API's preflight of a create (lambdas/core/preflight.ts) reads two quotas of service code `ec2`:
L-34B43A08 "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests" and L-3819A6DF "All G and VT
Spot Instance Requests". Here GetServiceQuota answers them, and GetAWSDefaultServiceQuota (which moto lacks)
answers AWS's defaults for a new account (5 and 0 vCPUs). Local mode starts generous (10000 vCPUs applied
to both), so local users and tests that do not care are neither refused nor warned.

Tests set the values over HTTP, as they set everything else in the emulator:

    POST /_mfenv/quotas {"quotaCode": "L-34B43A08", "value": 5}
        the applied value (what GetServiceQuota answers);
    POST /_mfenv/quotas {"quotaCode": "L-34B43A08", "value": null, "defaultValue": 0}
        a quota never changed from its default: GetServiceQuota answers NoSuchResourceException, as
        Service Quotas does, and GetAWSDefaultServiceQuota the default;
    POST /_mfenv/quotas {"deny": true}
        every Service Quotas call of the account and region answers AccessDeniedException (a function
        without the grant).

"accountId" and "region" default to the emulator's. The values live on that region's Service Quotas
backend, so POST /moto-api/reset brings the defaults back. Imported by moto_server.py for its side effects.
"""
import json

from moto.core.exceptions import JsonRESTError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.servicequotas.exceptions import NoSuchResource
from moto.servicequotas.models import ServiceQuotasBackend, servicequotas_backends
from moto.servicequotas.responses import ServiceQuotasResponse

ROUTE = "/_mfenv/quotas"
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
# Far above any maxVcpus ceiling a deployment may set (lambdas/core/settings.ts allows 10000).
LOCAL_APPLIED_VCPUS = 10000.0

# AWS's defaults for a new account: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html
EC2_SPOT_QUOTAS = {
    "L-34B43A08": {"name": "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests", "aws_default": 5.0},
    "L-3819A6DF": {"name": "All G and VT Spot Instance Requests", "aws_default": 0.0},
}


class AccessDenied(JsonRESTError):
    def __init__(self) -> None:
        super().__init__("AccessDeniedException", "You do not have sufficient access to perform this action.")


def _state(backend):
    # Kept on the backend instance: moto's reset re-creates it, and with it these defaults.
    state = backend.__dict__.get("_mfenv_ec2_quotas")
    if state is None:
        state = {
            "deny": False,
            "quotas": {code: {"applied": LOCAL_APPLIED_VCPUS, "default": q["aws_default"]} for code, q in EC2_SPOT_QUOTAS.items()},
        }
        backend._mfenv_ec2_quotas = state
    return state


def _quota(backend, code, value):
    return {
        "ServiceCode": "ec2",
        "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
        "QuotaArn": f"arn:aws:servicequotas:{backend.region_name}:{backend.account_id}:ec2/{code}",
        "QuotaCode": code,
        "QuotaName": EC2_SPOT_QUOTAS[code]["name"],
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }


_moto_get_service_quota = ServiceQuotasBackend.get_service_quota


def _get_service_quota(self, service_code, quota_code):
    state = _state(self)
    if state["deny"]:
        raise AccessDenied()
    if service_code == "ec2" and quota_code in EC2_SPOT_QUOTAS:
        applied = state["quotas"][quota_code]["applied"]
        if applied is None:
            raise NoSuchResource()
        return _quota(self, quota_code, applied)
    return _moto_get_service_quota(self, service_code, quota_code)


def _get_aws_default_service_quota(self, service_code, quota_code):
    state = _state(self)
    if state["deny"]:
        raise AccessDenied()
    if service_code == "ec2" and quota_code in EC2_SPOT_QUOTAS:
        return _quota(self, quota_code, state["quotas"][quota_code]["default"])
    for quota in self.list_aws_default_service_quotas(service_code):
        if quota["QuotaCode"] == quota_code:
            return quota
    raise NoSuchResource()


def _get_aws_default_service_quota_response(self):
    params = json.loads(self.body)
    quota = self.backend.get_aws_default_service_quota(str(params.get("ServiceCode")), str(params.get("QuotaCode")))
    return json.dumps({"Quota": quota})


ServiceQuotasBackend.get_service_quota = _get_service_quota
ServiceQuotasBackend.get_aws_default_service_quota = _get_aws_default_service_quota
ServiceQuotasResponse.get_aws_default_service_quota = _get_aws_default_service_quota_response


def _answer(start_response, status, body):
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def _set_quotas(environ, start_response):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        backend = servicequotas_backends[body.get("accountId", DEFAULT_ACCOUNT_ID)][body.get("region", DEFAULT_REGION)]
        state = _state(backend)
        if "deny" in body:
            state["deny"] = bool(body["deny"])
        code = body.get("quotaCode")
        if code is not None:
            if code not in EC2_SPOT_QUOTAS:
                raise ValueError(f"quotaCode must be one of {', '.join(EC2_SPOT_QUOTAS)}")
            for key, field in (("value", "applied"), ("defaultValue", "default")):
                if key in body:
                    value = body[key]
                    if value is not None and not isinstance(value, (int, float)):
                        raise ValueError(f"{key} must be a number" + (" or null" if key == "value" else ""))
                    if value is None and key == "defaultValue":
                        raise ValueError("defaultValue must be a number")
                    state["quotas"][code][field] = None if value is None else float(value)
    except (ValueError, KeyError) as error:
        return _answer(start_response, "400 Bad Request", {"message": str(error)})
    return _answer(start_response, "200 OK", state)


_dispatch = DomainDispatcherApplication.__call__


def _dispatch_with_quota_route(self, environ, start_response):
    if environ.get("PATH_INFO") == ROUTE and environ.get("REQUEST_METHOD") == "POST":
        return _set_quotas(environ, start_response)
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _dispatch_with_quota_route
