/**
 * The Metaflow configuration payload (DESIGN §5): exactly the keys Metaflow's metaflow_config.py reads,
 * saved by a teammate as ~/.metaflowconfig/config_<name>.json and selected with METAFLOW_PROFILE=<name>.
 */
import type { EnvironmentNames } from './naming';
import type { MetaflowConfig } from './environment';

export interface MetaflowConfigInput {
  environmentName: string;
  names: Pick<EnvironmentNames, 'bucket' | 'jobQueueArn' | 'jobRoleArn'> &
    Partial<Pick<EnvironmentNames, 'sfnRoleArn' | 'eventsRoleArn' | 'sfnTableName' | 'sfnStateMachinePrefix'>>;
  /** Scheduled flows on Step Functions: adds the four METAFLOW_SFN_* keys (names must carry them). */
  scheduling?: boolean;
  /** Only against an S3-compatible emulator; on AWS Metaflow finds S3 itself. */
  s3EndpointUrl?: string;
  /** Where Batch tasks pull Metaflow's default image from (see settings.batchContainerRegistry). */
  containerRegistry?: string;
}

export function metaflowConfigFor({ environmentName, names, s3EndpointUrl, containerRegistry, scheduling }: MetaflowConfigInput): MetaflowConfig {
  return {
    METAFLOW_DEFAULT_DATASTORE: 's3',
    METAFLOW_DATASTORE_SYSROOT_S3: `s3://${names.bucket}/metaflow`,
    METAFLOW_DATATOOLS_S3ROOT: `s3://${names.bucket}/data`,
    // Always set: without it Metaflow submits to the first enabled queue in the account, someone else's.
    METAFLOW_BATCH_JOB_QUEUE: names.jobQueueArn,
    METAFLOW_ECS_S3_ACCESS_IAM_ROLE: names.jobRoleArn,
    // No metadata service: runs are recorded next to the data, in the datastore (the origin's choice).
    METAFLOW_DEFAULT_METADATA: 'local',
    METAFLOW_USER: environmentName,
    // Metaflow puts this before any image named without a registry host (its default `python:<version>`, a
    // flow's `@batch(image="python:3.12-slim")`), so tasks pull from it instead of Docker Hub, whose anonymous
    // pull limit a Spot fleet soon hits. A Docker Hub image of another publisher then needs its full name
    // (docker.io/<publisher>/<image>), as README says.
    ...(containerRegistry ? { METAFLOW_BATCH_CONTAINER_REGISTRY: containerRegistry } : {}),
    ...(s3EndpointUrl ? { METAFLOW_S3_ENDPOINT_URL: s3EndpointUrl } : {}),
    ...(scheduling ? schedulingKeys(names) : {}),
  };
}

/**
 * What `step-functions create` reads (metaflow_config.py; plugins/aws/step_functions): without the role it
 * refuses to deploy ("No IAM role found for AWS Step Functions"), without the events role it cannot schedule,
 * without the table it cannot compile a foreach. The prefix makes every state machine (and the rule named
 * after it) `<prefix>_<flow>`, the only names the access role may touch (policies.ts, accessRolePolicy).
 */
function schedulingKeys(names: MetaflowConfigInput['names']): MetaflowConfig {
  const { sfnRoleArn, eventsRoleArn, sfnTableName, sfnStateMachinePrefix } = names;
  if (!sfnRoleArn || !eventsRoleArn || !sfnTableName || !sfnStateMachinePrefix) {
    throw new Error('The Metaflow payload of a scheduling environment needs its Step Functions names.');
  }
  return {
    METAFLOW_SFN_IAM_ROLE: sfnRoleArn,
    METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE: eventsRoleArn,
    METAFLOW_SFN_DYNAMO_DB_TABLE: sfnTableName,
    METAFLOW_SFN_STATE_MACHINE_PREFIX: sfnStateMachinePrefix,
  };
}
