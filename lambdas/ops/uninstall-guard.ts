/**
 * The uninstall guard: a CloudFormation custom resource of the bootstrap stack that refuses its own deletion
 * while environments are live. CloudFormation deletes it before anything it depends on (the registry table,
 * the workflows, the API: infra/uninstall-guard.ts), so `cdk destroy` stops there, with a reason that says how
 * many environments remain and how to drain them, instead of stranding their compute environments, queues,
 * roles, subnets and buckets with nothing left that knows of them.
 *
 * Create and Update change nothing. A Delete that cannot read the registry refuses too: not knowing is no
 * reason to strand anything. A platform owner who means to leave environments behind can still delete the
 * stack while retaining this one resource (README, Uninstall).
 */
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { logger } from '../core/logger';
import { scanEnvironments } from '../core/registry';
import { messageOf } from '../core/errors';

/** The same on every Create, so an Update never replaces (and so never deletes) the guard. */
export const GUARD_PHYSICAL_ID = 'mfenv-uninstall-guard';

/** CloudFormation shows a failure reason of at most 4 KiB; a few names tell the owner enough. */
const NAMES_SHOWN = 10;

/** What the guard answers CloudFormation: success, or failure with the sentence the owner sees. */
export interface GuardAnswer {
  status: 'SUCCESS' | 'FAILED';
  reason?: string;
}

/** Why the stack may not go yet, or undefined when no environment is live. */
export async function reasonToKeepStack(): Promise<string | undefined> {
  const live = await scanEnvironments();
  if (live.length === 0) return undefined;
  const shown = live.slice(0, NAMES_SHOWN).map((record) => `${record.name} (${record.status})`);
  const more = live.length > NAMES_SHOWN ? ` and ${live.length - NAMES_SHOWN} more` : '';
  const count = live.length === 1 ? '1 environment is' : `${live.length} environments are`;
  return (
    `${count} still live: ${shown.join(', ')}${more}. Deleting the stack now would strand their compute environments, ` +
    'job queues, roles, subnets and buckets. Tear them down first with an admin\'s credentials: ' +
    'npm run drain -- --api <ApiUrl> --yes (add --purge to delete buckets that hold data), then delete the stack again.'
  );
}

export async function answerFor(event: CloudFormationCustomResourceEvent): Promise<GuardAnswer> {
  if (event.RequestType !== 'Delete') return { status: 'SUCCESS' };
  try {
    const reason = await reasonToKeepStack();
    return reason ? { status: 'FAILED', reason } : { status: 'SUCCESS' };
  } catch (error) {
    return {
      status: 'FAILED',
      reason: `The registry of environments could not be read (${messageOf(error)}), so the stack is kept; try the deletion again.`,
    };
  }
}

/** Sends the answer to the pre-signed URL CloudFormation waits on (what the cfn-response module does). */
async function respond(event: CloudFormationCustomResourceEvent, answer: GuardAnswer, context: Context): Promise<void> {
  const body = JSON.stringify({
    Status: answer.status,
    Reason: answer.reason ?? `See the log stream ${context.logStreamName}.`,
    PhysicalResourceId: GUARD_PHYSICAL_ID,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
  });
  // An empty content type: the URL is signed without one.
  const response = await fetch(event.ResponseURL, { method: 'PUT', body, headers: { 'content-type': '' } });
  if (!response.ok) throw new Error(`CloudFormation's response URL answered ${response.status}.`);
}

export async function handler(event: CloudFormationCustomResourceEvent, context: Context): Promise<void> {
  const answer = await answerFor(event);
  logger.info('uninstall guard answered', { requestType: event.RequestType, status: answer.status, reason: answer.reason });
  await respond(event, answer, context);
}
