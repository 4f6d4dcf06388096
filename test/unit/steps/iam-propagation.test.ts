/**
 * The classifier that decides whether AWS Batch is refusing (or has marked INVALID) a compute environment
 * because a role or instance profile is not usable yet, which on a fresh one is IAM's eventual consistency.
 * The texts are AWS's own, as reported publicly:
 *
 * - "CLIENT_ERROR - Invalid IamInstanceProfile: ecsInstanceRole", a compute environment gone INVALID on a
 *   brand new account: https://github.com/Netflix/metaflow-tools/issues/9
 * - "Invalid instance profile", the console's statusReason: https://github.com/aws/aws-cdk/issues/6495
 * - "Value (...) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", EC2's
 *   answer that Terraform's provider retries as eventual consistency (instanceProfileAddRole):
 *   https://github.com/hashicorp/terraform-provider-aws/blob/main/internal/service/iam/instance_profile.go
 *   and https://github.com/nextflow-io/nextflow/issues/617
 * - "CLIENT_ERROR - User: batch.amazonaws.com is not authorized to perform: sts:AssumeRole on resource:
 *   arn:aws:iam::123456789012:role/...", an INVALID statusReason:
 *   https://github.com/hashicorp/terraform-provider-aws/pull/21281
 * - "User: ... is not authorized to perform: iam:PassRole", the wording AWS Batch documents:
 *   https://docs.aws.amazon.com/batch/latest/userguide/security_iam_troubleshoot.html
 * - "The role with name ... cannot be found.", IAM's NoSuchEntity text (Terraform matches "The role with name").
 * - "The ECS Instance Role should be an ECS Instance Profile ARN.", Batch refusing a role ARN where a profile
 *   belongs, a mistake no wait cures: https://github.com/hashicorp/terraform-provider-aws/pull/16230
 */
import { isIamPropagationDelay, isIamPropagationReason } from '../../../lambdas/steps/batch-steps';

const clientError = (message: string, name = 'ClientException') =>
  Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });

describe('isIamPropagationReason', () => {
  it.each([
    'CLIENT_ERROR - Invalid IamInstanceProfile: ecsInstanceRole',
    'Invalid instance profile',
    'CLIENT_ERROR - Value (mfenv-alice-instance) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name',
    'CLIENT_ERROR - Value (arn:aws:iam::123456789012:instance-profile/mfenv/mfenv-alice-instance) for parameter iamInstanceProfile.arn is invalid.',
    'CLIENT_ERROR - User: batch.amazonaws.com is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/tf-acc-test-7492930073958672562 (Service: AWSSecurityTokenService; Status Code: 403; Error Code: AccessDenied)',
    'CLIENT_ERROR - User: arn:aws:sts::123456789012:assumed-role/AWSServiceRoleForBatch/aws-batch is not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/mfenv/mfenv-alice-instance',
    'CLIENT_ERROR - Instance profile arn:aws:iam::123456789012:instance-profile/mfenv/mfenv-alice-instance does not exist',
    'CLIENT_ERROR - The role with name mfenv-alice-instance cannot be found.',
  ])('reads "%s" as a role or instance profile AWS cannot use yet', (reason) => {
    // prepare: the text as AWS reports it

    // act
    const verdict = isIamPropagationReason(reason);

    // assess
    expect(verdict).toBe(true);
  });

  it.each([
    "CLIENT_ERROR - The subnet ID 'subnet-0abc' does not exist",
    "CLIENT_ERROR - The security group 'sg-0abc' does not exist",
    'CLIENT_ERROR - You are not authorized to use launch template: lt-0abc',
    'CLIENT_ERROR - Launch template lt-0abc with version $Default does not exist',
    'The ECS Instance Role should be an ECS Instance Profile ARN.',
    'CLIENT_ERROR - Maximum number of compute environments reached',
    'Compute environment is available',
  ])('does not read "%s" as IAM propagation: waiting would not cure it', (reason) => {
    // prepare: a text about the network, the launch template, a mistake or a quota

    // act
    const verdict = isIamPropagationReason(reason);

    // assess
    expect(verdict).toBe(false);
  });

  it('has nothing to read when AWS gives no reason', () => {
    // prepare / act
    const verdict = isIamPropagationReason(undefined);

    // assess
    expect(verdict).toBe(false);
  });
});

describe('isIamPropagationDelay', () => {
  it("takes Batch's refusal of a create whose instance profile it cannot see, and nothing that is not a Batch client error", () => {
    // prepare
    const refused = clientError('CLIENT_ERROR - Invalid IamInstanceProfile: mfenv-alice-instance');
    const thrown = new Error('Invalid IamInstanceProfile: mfenv-alice-instance');

    // act
    const verdicts = [isIamPropagationDelay(refused), isIamPropagationDelay(thrown)];

    // assess
    expect(verdicts).toEqual([true, false]);
  });
});
