/**
 * What the step integration tests share: a workflow environment as the ASL passes it, a way to call a step
 * Lambda's handler as Step Functions would (JSON in, JSON out), and quiet logs.
 */
import type { Context } from 'aws-lambda';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../../../lambdas/core/clients';
import type { EnvironmentRecord, EnvironmentStatus, WorkflowEnvironment } from '../../../lambdas/core/environment';
import { logger } from '../../../lambdas/core/logger';
import { namesFor, resourcesOf } from '../../../lambdas/core/naming';
import * as registry from '../../../lambdas/core/registry';
import { currentDeployment, settings } from '../../../lambdas/core/settings';
import { DESTRUCTIVE_STEPS } from '../../../lambdas/steps/catalogue';

/** Step logs are JSON lines meant for CloudWatch; in these tests they would only hide jest's report. */
export function quietLogs(): void {
  logger.setLogLevel('SILENT');
}

export const OWNER = 'arn:aws:iam::123456789012:user/alice';

export function workflowEnvironment(name: string, overrides: Partial<WorkflowEnvironment> = {}): WorkflowEnvironment {
  return {
    name,
    owner: OWNER,
    ownerUniqueId: null,
    spec: { maxVcpus: 16, gpu: true },
    generation: 1,
    purge: false,
    mode: 'delete',
    ...overrides,
  };
}

/** The names every step derives for an environment under the emulator's deployment settings. */
export function namesOf(name: string) {
  return namesFor(currentDeployment(), name);
}

type LambdaHandler = (event: unknown, context: Context) => Promise<unknown>;

/** The registry record of a workflow environment in `status`, as the API writes it. */
export function recordFor(environment: WorkflowEnvironment, status: EnvironmentStatus): EnvironmentRecord {
  const now = new Date().toISOString();
  return {
    name: environment.name,
    owner: environment.owner,
    ownerUniqueId: environment.ownerUniqueId,
    status,
    statusReason: null,
    region: settings.region(),
    spec: environment.spec,
    resources: resourcesOf(namesOf(environment.name)),
    config: null,
    generation: environment.generation,
    retainedBucket: null,
    purgeRequested: environment.purge,
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * What the API records when a teardown starts (DELETE: DELETING at the next generation, with purge as asked;
 * a failed create: still CREATING at its generation). Destructive steps act only on a teardown the registry
 * shows (lambdas/steps/teardown-guard.ts), so tests that call them directly record it first, as the API would.
 */
export async function recordTeardown(environment: WorkflowEnvironment): Promise<void> {
  const status = environment.mode === 'rollback' ? 'CREATING' : 'DELETING';
  const existing = await registry.getEnvironment(environment.name);
  if (existing?.status === status && existing.generation === environment.generation && existing.purgeRequested === environment.purge) return;
  const record = recordFor(environment, status);
  await dynamoClient().send(
    new PutCommand({ TableName: settings.tableName(), Item: { pk: `ENV#${environment.name}`, kind: 'environment', ...record } }),
  );
}

/**
 * Calls a step handler the way the lambda:invoke Task does: a JSON payload, a JSON answer. A destructive
 * step gets its teardown recorded first, unless `unrecorded` (to test the refusal).
 */
export async function invoke<T = Record<string, unknown>>(
  handler: LambdaHandler,
  payload: { step: string; environment: WorkflowEnvironment } & Record<string, unknown>,
  options: { unrecorded?: boolean } = {},
): Promise<T> {
  if (DESTRUCTIVE_STEPS.includes(payload.step) && !options.unrecorded) await recordTeardown(payload.environment);
  const answer = await handler(JSON.parse(JSON.stringify(payload)), {} as Context);
  return JSON.parse(JSON.stringify(answer ?? null)) as T;
}

/** A unique environment name per test, so tests in one file share an emulator without seeing each other. */
let counter = 0;
export function uniqueName(base: string): string {
  counter += 1;
  return `${base}-${counter}`;
}

/** Runs `act` with one setting changed (a deployment choice), then puts the previous value back. */
export async function withSetting<T>(variable: string, value: string, act: () => Promise<T>): Promise<T> {
  const previous = process.env[variable];
  process.env[variable] = value;
  try {
    return await act();
  } finally {
    if (previous === undefined) delete process.env[variable];
    else process.env[variable] = previous;
  }
}
