"""
moto_server, with DynamoDB requests handled one at a time, and bucket policies stored but not evaluated.

moto's HTTP server is threaded and its DynamoDB backend takes no lock: two TransactWriteItems (or a
conditional write and a transaction) arriving together can both pass their conditions, and a cancelled
transaction restores a copy of the whole table taken before it ran, undoing writes made meanwhile.
DynamoDB itself serializes them, and admission control (quota counters in the registry table) relies on
that, so the emulator does too. Other services keep moto's threading.

Bucket policies: moto evaluates a bucket policy's statements by action and resource alone, ignoring their
Principal and Condition. Every Deny then refuses everyone: the statements that admit an environment's job and
instance roles only through the VPC endpoint, from their own subnets (which must not concern a teammate's
access role at all) would refuse the teammate too. AWS evaluates them in full; here the policy is stored and
read back as on AWS, and what it means is proven offline by the IAM policy simulator tests instead.

Fault injection: tests make chosen requests fail with an AWS error (moto_faults.py).

Same arguments as moto_server (-H host, -p port).
"""
import sys
import threading

from moto import server
from moto.iam.access_control import PermissionResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3.models import FakeBucket

_dynamodb_lock = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _serialized_dispatch(self, environ, start_response):
    # DynamoDB's JSON protocol names the operation in X-Amz-Target: "DynamoDB_20120810.TransactWriteItems".
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb_lock:
            return _dispatch(self, environ, start_response)
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _serialized_dispatch


def _bucket_policy_not_evaluated(self, action, resource):
    # See the module docstring: a policy moto cannot evaluate in full is not evaluated at all.
    return PermissionResult.NEUTRAL


FakeBucket.get_permission = _bucket_policy_not_evaluated

import moto_quotas  # noqa: E402,F401  EC2 Spot vCPU quotas in Service Quotas, set over HTTP (see moto_quotas.py)
import moto_batch_updates  # noqa: E402,F401  UpdateComputeEnvironment applies computeResources as AWS does (see moto_batch_updates.py)
import moto_batch_status  # noqa: E402,F401  compute environments reported INVALID on request, as AWS reports them (see moto_batch_status.py)

# Fault injection (POST /_mfenv/faults, moto_faults.py), in front of everything above: last installed.
import moto_faults  # noqa: E402

moto_faults.install(DomainDispatcherApplication)

if __name__ == "__main__":
    sys.exit(server.main())
