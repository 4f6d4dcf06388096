/**
 * What every invocation writes besides its answer: log lines carrying the Lambda request id, the cold-start
 * flag and the X-Ray trace id, with no key left over from the invocation before; and the metrics it
 * recorded, as Embedded Metric Format documents in namespace mfenv with the service dimension.
 */
import type { Context } from 'aws-lambda';
import type { WorkflowEnvironment } from '../../../lambdas/core/environment';
import type * as StepModule from '../../../lambdas/steps/step';
import type * as LoggerModule from '../../../lambdas/core/logger';
import type * as MetricsModule from '../../../lambdas/core/metrics';
import { handler as apiHandler } from '../../../lambdas/api/handler';
import { apiCaller, lambdaContext, useUnreachableAws, userArn } from '../../support/api-events';
import { emfDocuments, jsonLinesOf } from '../../support/stdout';

const TRACE_ROOT = '1-5759e988-bd862e3fe1be46a994272793';

const environmentNamed = (name: string): WorkflowEnvironment => ({
  name,
  owner: `arn:aws:iam::123456789012:user/${name}`,
  ownerUniqueId: null,
  spec: { maxVcpus: 16, gpu: false },
  generation: 1,
  purge: false,
  mode: 'delete',
});

/** Fresh modules, as a new Lambda instance loads them: the logger's cold start has not been seen yet. */
function freshModules() {
  let modules!: { step: typeof StepModule; logger: typeof LoggerModule; metrics: typeof MetricsModule };
  jest.isolateModules(() => {
    modules = {
      step: require('../../../lambdas/steps/step'),
      logger: require('../../../lambdas/core/logger'),
      metrics: require('../../../lambdas/core/metrics'),
    };
  });
  modules.logger.logger.setLogLevel('INFO');
  return modules;
}

describe('the log lines of a handler', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    process.env._X_AMZN_TRACE_ID = `Root=${TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1`;
    // As Lambda sets it for an instance started by an invocation (Powertools reports no cold start otherwise).
    process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';
  });
  afterEach(() => {
    process.env = { ...saved };
  });

  it('carry the request id, cold start and trace id, and nothing of the invocation before', async () => {
    // prepare
    const { step, logger } = freshModules();
    const steps = {
      markReady: async () => {
        // A key a step adds for itself: it must not outlive its invocation.
        logger.logger.appendKeys({ bucketOfThisStep: 'mfenv-alice-1234abcd' });
        logger.logger.info('working');
        return {};
      },
      startRollback: async () => ({}),
      finishTeardown: async () => {
        logger.logger.info('working');
        return {};
      },
      markTeardownFailed: async () => ({}),
    } as unknown as StepModule.StepTable<'registry'>;
    const handler = step.stepHandler('registry', steps);

    // act
    const first = await jsonLinesOf(() => handler({ step: 'markReady', environment: environmentNamed('alice') }, lambdaContext('invocation-1') as Context));
    const second = await jsonLinesOf(() => handler({ step: 'finishTeardown', environment: environmentNamed('bob') }, lambdaContext('invocation-2') as Context));

    // assess
    const logLines = (lines: Record<string, any>[]) => lines.filter((line) => typeof line.message === 'string');
    expect(logLines(first).length).toBeGreaterThan(1);
    expect(logLines(second).length).toBeGreaterThan(1);
    for (const line of logLines(first)) {
      expect(line).toMatchObject({ function_request_id: 'invocation-1', cold_start: true, xray_trace_id: TRACE_ROOT, environment: 'alice', step: 'markReady' });
    }
    expect(logLines(first)).toContainEqual(expect.objectContaining({ message: 'working', bucketOfThisStep: 'mfenv-alice-1234abcd' }));
    for (const line of logLines(second)) {
      expect(line).toMatchObject({ function_request_id: 'invocation-2', cold_start: false, environment: 'bob', step: 'finishTeardown' });
      expect(line).not.toHaveProperty('bucketOfThisStep');
    }
  });

  it('drop the keys of an invocation that failed, too', async () => {
    // prepare
    const { step, logger } = freshModules();
    const steps = {
      markReady: async () => {
        throw new Error('the step broke');
      },
      startRollback: async () => ({}),
      finishTeardown: async () => ({}),
      markTeardownFailed: async () => ({}),
    } as unknown as StepModule.StepTable<'registry'>;
    const handler = step.stepHandler('registry', steps);

    // act
    const failed = await jsonLinesOf(() => expect(handler({ step: 'markReady', environment: environmentNamed('alice') }, lambdaContext() as Context)).rejects.toThrow('the step broke'));
    const after = await jsonLinesOf(async () => logger.logger.info('between invocations'));

    // assess
    expect(failed).toContainEqual(expect.objectContaining({ message: 'step failed', environment: 'alice' }));
    expect(after).toHaveLength(1);
    expect(after[0]).not.toHaveProperty('environment');
    expect(after[0]).not.toHaveProperty('step');
  });
});

describe('the log level', () => {
  it('stays what the process set across invocations (Powertools would put its initial one back)', async () => {
    // prepare
    const { step, logger } = freshModules();
    const steps = {
      markReady: async () => ({}),
      startRollback: async () => ({}),
      finishTeardown: async () => ({}),
      markTeardownFailed: async () => ({}),
    } as unknown as StepModule.StepTable<'registry'>;
    const handler = step.stepHandler('registry', steps);
    logger.logger.setLogLevel('SILENT');

    // act
    const lines = await jsonLinesOf(async () => {
      for (const name of ['alice', 'bob', 'carol']) await handler({ step: 'markReady', environment: environmentNamed(name) }, lambdaContext() as Context);
    });

    // assess
    expect(lines.filter((line) => typeof line.message === 'string')).toEqual([]);
    expect(logger.logger.getLevelName()).toBe('SILENT');
  });
});

describe('the metrics of a handler', () => {
  it('are written once per invocation as EMF in namespace mfenv, with the service dimension', async () => {
    // prepare
    const { step, metrics } = freshModules();
    const steps = {
      markReady: async () => {
        metrics.recordStatusChange({ status: 'READY', createdAt: '2026-01-01T10:00:00.000Z', updatedAt: '2026-01-01T10:02:05.000Z' });
        return {};
      },
      startRollback: async () => ({}),
      finishTeardown: async () => {
        metrics.recordStatusChange({ status: 'CREATE_FAILED', createdAt: '2026-01-01T10:00:00.000Z', updatedAt: '2026-01-01T10:09:00.000Z' });
        return {};
      },
      markTeardownFailed: async () => ({}),
    } as unknown as StepModule.StepTable<'registry'>;
    const handler = step.stepHandler('registry', steps);

    // act
    const ready = emfDocuments(await jsonLinesOf(() => handler({ step: 'markReady', environment: environmentNamed('alice') }, lambdaContext() as Context)));
    const failed = emfDocuments(await jsonLinesOf(() => handler({ step: 'finishTeardown', environment: environmentNamed('alice') }, lambdaContext() as Context)));
    const nothing = await jsonLinesOf(() => handler({ step: 'startRollback', environment: environmentNamed('alice') }, lambdaContext() as Context));

    // assess
    expect(ready).toHaveLength(1);
    expect(ready[0]!._aws.CloudWatchMetrics).toEqual([
      { Namespace: 'mfenv', Dimensions: [['service']], Metrics: [{ Name: 'SecondsToReady', Unit: 'Seconds' }] },
    ]);
    expect(ready[0]).toMatchObject({ service: 'mfenv', SecondsToReady: 125 });
    expect(failed).toHaveLength(1);
    expect(failed[0]!._aws.CloudWatchMetrics[0].Metrics).toEqual([{ Name: 'EnvironmentsFailed', Unit: 'Count' }]);
    expect(failed[0]).toMatchObject({ service: 'mfenv', EnvironmentsFailed: 1 });
    expect(failed[0]).not.toHaveProperty('SecondsToReady');
    // An invocation that recorded nothing writes no metric, and no warning saying so.
    expect(emfDocuments(nothing)).toEqual([]);
    expect(nothing.filter((line) => line.level === 'WARN')).toEqual([]);
  });
});

describe('the metrics of the API', () => {
  useUnreachableAws();

  it('count a create refused by the rules, with the reason as metadata, and not one refused for its form', async () => {
    // prepare
    const alice = apiCaller(apiHandler, userArn('alice'));

    // act
    const refused = emfDocuments(await jsonLinesOf(() => alice.post('/environments', { name: 'for-bob', owner: userArn('bob') })));
    const malformed = emfDocuments(await jsonLinesOf(() => alice.post('/environments', { name: 'Not A Name' })));

    // assess
    expect(refused).toHaveLength(1);
    expect(refused[0]!._aws.CloudWatchMetrics).toEqual([
      { Namespace: 'mfenv', Dimensions: [['service']], Metrics: [{ Name: 'EnvironmentsRefused', Unit: 'Count' }] },
    ]);
    expect(refused[0]).toMatchObject({ service: 'mfenv', EnvironmentsRefused: 1, refusal: 'ForbiddenError' });
    expect(malformed).toEqual([]);
  });
});
