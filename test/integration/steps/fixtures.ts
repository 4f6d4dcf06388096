/**
 * What the step integration tests share: a workflow environment as the ASL passes it, a way to call a step
 * Lambda's handler as Step Functions would (JSON in, JSON out), and quiet logs.
 */
import type { Context } from 'aws-lambda';
import type { WorkflowEnvironment } from '../../../lambdas/core/environment';
import { logger } from '../../../lambdas/core/logger';
import { namesFor } from '../../../lambdas/core/naming';
import { currentDeployment } from '../../../lambdas/core/settings';

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

/** Calls a step handler the way the lambda:invoke Task does: a JSON payload, a JSON answer. */
export async function invoke<T = Record<string, unknown>>(
  handler: LambdaHandler,
  payload: { step: string; environment: WorkflowEnvironment } & Record<string, unknown>,
): Promise<T> {
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
