/**
 * The uninstall guard against the emulator's registry, answering CloudFormation as it does on AWS: a PUT of
 * its JSON answer to the response URL (here a local HTTP server standing in for CloudFormation's pre-signed
 * S3 URL, which the emulator does not provide).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import type { EnvironmentStatus } from '../../../lambdas/core/environment';
import * as registry from '../../../lambdas/core/registry';
import { SETTING } from '../../../lambdas/core/settings';
import { GUARD_PHYSICAL_ID, handler } from '../../../lambdas/ops/uninstall-guard';
import { useEmulator } from '../../support/emulator';
import { quietLogs, recordFor, workflowEnvironment } from '../steps/fixtures';

const { fresh } = useEmulator();

interface Answer {
  Status: string;
  Reason: string;
  PhysicalResourceId: string;
  StackId: string;
  RequestId: string;
  LogicalResourceId: string;
}

let server: Server;
let answers: { contentType: string | undefined; body: Answer }[];
let responseUrl: string;

beforeAll(async () => {
  quietLogs();
  server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk) => (text += chunk));
    request.on('end', () => {
      answers.push({ contentType: request.headers['content-type'], body: JSON.parse(text) as Answer });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  responseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cloudformation-response`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

beforeEach(async () => {
  await fresh();
  answers = [];
});

function eventOf(requestType: 'Create' | 'Update' | 'Delete'): CloudFormationCustomResourceEvent {
  const common = {
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:guard',
    ResponseURL: responseUrl,
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/mfenv/guid',
    RequestId: `request-${requestType}`,
    LogicalResourceId: 'UninstallGuard',
    ResourceType: 'Custom::MfenvUninstallGuard',
    ResourceProperties: { ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:guard' },
  };
  if (requestType === 'Create') return { ...common, RequestType: 'Create' };
  if (requestType === 'Update') {
    return { ...common, RequestType: 'Update', PhysicalResourceId: GUARD_PHYSICAL_ID, OldResourceProperties: common.ResourceProperties };
  }
  return { ...common, RequestType: 'Delete', PhysicalResourceId: GUARD_PHYSICAL_ID };
}

const context = { logStreamName: '2026/11/28/[$LATEST]guard' } as Context;

async function recordEnvironment(name: string, status: EnvironmentStatus) {
  await registry.putNewEnvironment(recordFor(workflowEnvironment(name), status));
}

test.each(['Create', 'Update'] as const)('a %s succeeds whatever the registry holds, with the same physical id', async (requestType) => {
  // prepare
  await recordEnvironment('alice', 'READY');

  // act
  await handler(eventOf(requestType), context);

  // assess
  expect(answers).toHaveLength(1);
  expect(answers[0]!.body).toEqual(
    expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: GUARD_PHYSICAL_ID, RequestId: `request-${requestType}` }),
  );
  expect(answers[0]!.contentType).toBe('');
});

test('a Delete with no environment, or only DELETED ones, lets the stack go', async () => {
  // prepare
  await recordEnvironment('gone', 'DELETED');

  // act
  await handler(eventOf('Delete'), context);

  // assess
  expect(answers.map((answer) => answer.body.Status)).toEqual(['SUCCESS']);
});

test('a Delete while environments are live fails, naming how many, which, and how to drain them', async () => {
  // prepare: every live status counts, a failed create and a failed delete too (they may hold resources)
  await recordEnvironment('alice', 'READY');
  await recordEnvironment('bob', 'CREATE_FAILED');
  await recordEnvironment('carol', 'DELETE_FAILED');
  await recordEnvironment('gone', 'DELETED');

  // act
  await handler(eventOf('Delete'), context);

  // assess
  expect(answers).toHaveLength(1);
  const { Status, Reason, PhysicalResourceId } = answers[0]!.body;
  expect(Status).toBe('FAILED');
  expect(PhysicalResourceId).toBe(GUARD_PHYSICAL_ID);
  expect(Reason).toMatch(/^3 environments are still live: alice \(READY\), bob \(CREATE_FAILED\), carol \(DELETE_FAILED\)\./);
  expect(Reason).not.toMatch(/gone/);
  expect(Reason).toMatch(/npm run drain -- --api <ApiUrl> --yes/);
});

test('a Delete that cannot read the registry keeps the stack, and says why', async () => {
  // prepare: a table that does not exist stands for an unreadable registry
  const saved = process.env[SETTING.tableName];
  process.env[SETTING.tableName] = 'no-such-table';

  // act
  try {
    await handler(eventOf('Delete'), context);
  } finally {
    process.env[SETTING.tableName] = saved;
  }

  // assess
  expect(answers).toHaveLength(1);
  expect(answers[0]!.body.Status).toBe('FAILED');
  expect(answers[0]!.body.Reason).toMatch(/^The registry of environments could not be read \(.+\), so the stack is kept; try the deletion again\.$/);
});
