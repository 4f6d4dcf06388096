/**
 * The Metaflow payload as DESIGN §5 promises it, written here independently of lambdas/core/metaflow-config.ts
 * so the system and acceptance tests check the code against the contract, not against itself.
 */
export const LOCAL_PAYLOAD_KEYS = [
  // Task images from ECR Public's copy of Docker's official images, not Docker Hub's rate-limited original.
  'METAFLOW_BATCH_CONTAINER_REGISTRY',
  'METAFLOW_BATCH_JOB_QUEUE',
  'METAFLOW_DATASTORE_SYSROOT_S3',
  'METAFLOW_DATATOOLS_S3ROOT',
  'METAFLOW_DEFAULT_DATASTORE',
  'METAFLOW_DEFAULT_METADATA',
  'METAFLOW_ECS_S3_ACCESS_IAM_ROLE',
  // Added only against an S3-compatible endpoint, which local mode is.
  'METAFLOW_S3_ENDPOINT_URL',
  'METAFLOW_USER',
].sort();
