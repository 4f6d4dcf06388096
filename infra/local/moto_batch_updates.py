"""
UpdateComputeEnvironment for the emulator as AWS applies it: moto accepts computeResources and drops them
(its update changes only state and serviceRole), so a resize (PATCH /environments/{name}) would look done
while DescribeComputeEnvironments still showed the old maxvCpus and instance types.

Here the fields a scaling update changes (minvCpus, maxvCpus, desiredvCpus, subnets, securityGroupIds) are
always applied, and those of an infrastructure update (instanceTypes, allocationStrategy, ec2Configuration,
launchTemplate, ...) only where AWS allows them in place: a compute environment that uses Batch's
service-linked role and an allocation strategy of BEST_FIT_PROGRESSIVE, SPOT_CAPACITY_OPTIMIZED or
SPOT_PRICE_CAPACITY_OPTIMIZED (https://docs.aws.amazon.com/batch/latest/userguide/infrastructure-updates.html).
Otherwise the request is refused with a ClientException, as AWS refuses it, and nothing changes. Local mode
names a service role (moto requires one), so there a change of instance types takes the re-create path, as on
a deployment that sets mfenv:batchServiceRoleArn. Imported by moto_server.py for its side effect.
"""
from moto.batch.exceptions import ClientException
from moto.batch.models import BatchBackend

SCALING_FIELDS = ("minvCpus", "maxvCpus", "desiredvCpus", "subnets", "securityGroupIds")
INFRASTRUCTURE_FIELDS = (
    "allocationStrategy",
    "bidPercentage",
    "ec2Configuration",
    "ec2KeyPair",
    "imageId",
    "instanceRole",
    "instanceTypes",
    "launchTemplate",
    "placementGroup",
    "tags",
    "type",
    "updateToLatestImageVersion",
)
IN_PLACE_STRATEGIES = ("BEST_FIT_PROGRESSIVE", "SPOT_CAPACITY_OPTIMIZED", "SPOT_PRICE_CAPACITY_OPTIMIZED")
SERVICE_LINKED_ROLE_PATH = ":role/aws-service-role/batch.amazonaws.com/"

_update = BatchBackend.update_compute_environment


def _allows_infrastructure_update(compute_env):
    role = compute_env.service_role or ""
    strategy = (compute_env.compute_resources or {}).get("allocationStrategy", "")
    return (not role or SERVICE_LINKED_ROLE_PATH in role) and strategy in IN_PLACE_STRATEGIES


def _update_compute_environment(self, compute_environment_name, state, compute_resources, service_role):
    compute_env = self.get_compute_environment(compute_environment_name)
    changes = dict(compute_resources or {})
    if compute_env is not None and changes:
        infrastructure = [field for field in INFRASTRUCTURE_FIELDS if field in changes]
        if infrastructure and not _allows_infrastructure_update(compute_env):
            raise ClientException(
                f"Cannot update {', '.join(infrastructure)} of compute environment {compute_env.name}: infrastructure updates "
                "require the AWSServiceRoleForBatch service-linked role and an allocation strategy of BEST_FIT_PROGRESSIVE, "
                "SPOT_CAPACITY_OPTIMIZED or SPOT_PRICE_CAPACITY_OPTIMIZED"
            )
        max_vcpus = changes.get("maxvCpus", compute_env.compute_resources.get("maxvCpus"))
        min_vcpus = changes.get("minvCpus", compute_env.compute_resources.get("minvCpus", 0))
        if max_vcpus is not None and int(max_vcpus) < int(min_vcpus or 0):
            raise ClientException("maxvCpus must be greater than or equal to minvCpus")
    name, arn = _update(self, compute_environment_name, state, compute_resources, service_role)
    if compute_env is not None:
        for field in SCALING_FIELDS + INFRASTRUCTURE_FIELDS:
            if field in changes:
                compute_env.compute_resources[field] = changes[field]
    return name, arn


BatchBackend.update_compute_environment = _update_compute_environment
