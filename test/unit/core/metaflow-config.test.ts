import { metaflowConfigFor } from '../../../lambdas/core/metaflow-config';
import { namesFor } from '../../../lambdas/core/naming';

const names = namesFor({ prefix: 'mfenv', accountId: '123456789012', region: 'us-east-1', stackName: 'mfenv' }, 'alice');

describe('metaflowConfigFor', () => {
  it('emits exactly the keys Metaflow reads, pointing at this environment only', () => {
    // act
    const config = metaflowConfigFor({ environmentName: 'alice', names });
    // assess
    expect(config).toEqual({
      METAFLOW_DEFAULT_DATASTORE: 's3',
      METAFLOW_DATASTORE_SYSROOT_S3: `s3://${names.bucket}/metaflow`,
      METAFLOW_DATATOOLS_S3ROOT: `s3://${names.bucket}/data`,
      METAFLOW_BATCH_JOB_QUEUE: names.jobQueueArn,
      METAFLOW_ECS_S3_ACCESS_IAM_ROLE: names.jobRoleArn,
      METAFLOW_DEFAULT_METADATA: 'local',
      METAFLOW_USER: 'alice',
    });
  });

  it('adds the four Step Functions keys only when scheduling is on', () => {
    // act
    const off = metaflowConfigFor({ environmentName: 'alice', names });
    const on = metaflowConfigFor({ environmentName: 'alice', names, scheduling: true });
    // assess
    expect(Object.keys(off).filter((key) => key.startsWith('METAFLOW_SFN') || key.startsWith('METAFLOW_EVENTS'))).toEqual([]);
    expect(on).toEqual({
      ...off,
      METAFLOW_SFN_IAM_ROLE: names.sfnRoleArn,
      METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE: names.eventsRoleArn,
      METAFLOW_SFN_DYNAMO_DB_TABLE: names.sfnTableName,
      METAFLOW_SFN_STATE_MACHINE_PREFIX: 'mfenv-alice',
    });
  });

  it('never emits the dead key of the origin README, and only METAFLOW_ keys', () => {
    // act
    const config = metaflowConfigFor({ environmentName: 'alice', names, s3EndpointUrl: 'http://127.0.0.1:5000' });
    // assess
    expect(config).not.toHaveProperty('METAFLOW_DATATOOLS_SYSROOT_S3');
    expect(Object.keys(config).every((key) => key.startsWith('METAFLOW_'))).toBe(true);
  });

  it('adds the S3 endpoint only when one is given (an S3-compatible emulator)', () => {
    // act
    const local = metaflowConfigFor({ environmentName: 'alice', names, s3EndpointUrl: 'http://127.0.0.1:5000' });
    const aws = metaflowConfigFor({ environmentName: 'alice', names });
    // assess
    expect(local.METAFLOW_S3_ENDPOINT_URL).toBe('http://127.0.0.1:5000');
    expect(aws).not.toHaveProperty('METAFLOW_S3_ENDPOINT_URL');
  });

  it('points task images at the given registry only when one is given', () => {
    // act
    const withRegistry = metaflowConfigFor({ environmentName: 'alice', names, containerRegistry: 'public.ecr.aws/docker/library' });
    const without = metaflowConfigFor({ environmentName: 'alice', names });
    // assess
    expect(withRegistry.METAFLOW_BATCH_CONTAINER_REGISTRY).toBe('public.ecr.aws/docker/library');
    expect(without).not.toHaveProperty('METAFLOW_BATCH_CONTAINER_REGISTRY');
  });
});
