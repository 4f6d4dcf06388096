/**
 * The Metaflow configuration payload (DESIGN §5): exactly the keys Metaflow's metaflow_config.py reads,
 * saved by a teammate as ~/.metaflowconfig/config_<name>.json and selected with METAFLOW_PROFILE=<name>.
 */
import type { EnvironmentNames } from './naming';
import type { MetaflowConfig } from './environment';

export interface MetaflowConfigInput {
  environmentName: string;
  names: Pick<EnvironmentNames, 'bucket' | 'jobQueueArn' | 'jobRoleArn'>;
  /** Only against an S3-compatible emulator; on AWS Metaflow finds S3 itself. */
  s3EndpointUrl?: string;
  /** Where Batch tasks pull Metaflow's default image from (see settings.batchContainerRegistry). */
  containerRegistry?: string;
}

export function metaflowConfigFor({ environmentName, names, s3EndpointUrl, containerRegistry }: MetaflowConfigInput): MetaflowConfig {
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
  };
}
