/**
 * A Step Functions endpoint on 127.0.0.1, in front of the local workflow runner. It speaks the part of
 * the service's JSON 1.0 protocol that mfenv uses (StartExecution, DescribeExecution, ListExecutions,
 * GetExecutionHistory), so the API handler's and the rollback step's ordinary SFNClient reach it through
 * AWS_ENDPOINT_URL_SFN: not a line of their code differs from AWS. Requests are not authenticated (it
 * listens on loopback only).
 *
 * With `forwardTo` (the emulator; local mode sets it), every other request goes there as it came, a plain
 * HTTP proxy: the state machines Metaflow's `step-functions create` makes (CreateStateMachine,
 * ListStateMachines, DescribeStateMachine, UpdateStateMachine, TagResource, DeleteStateMachine…), their
 * executions, and the teardown step's listing and deleting of them all reach one store, the emulator's, as they
 * would reach one service on AWS. Only calls on the project's own state machines and their executions are
 * served here; ListStateMachines therefore lists the emulator's, not the project's two (DESIGN §8).
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { STATE_MACHINES, type StateMachineId } from '../../lambdas/steps/catalogue';
import {
  type ExecutionHistoryEvent,
  type ExecutionRecord,
  type ExecutionStatus,
  StepFunctionsApiError,
  type WorkflowRunner,
} from './workflow-runner';

export interface SfnEndpoint {
  /** e.g. http://127.0.0.1:41234: the value of AWS_ENDPOINT_URL_SFN. */
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

const TARGET_PREFIX = 'AWSStepFunctions.';
const EXECUTION_STATUSES: readonly ExecutionStatus[] = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'];

/** The JSON protocols carry timestamps as epoch seconds. */
const epochSeconds = (date: Date) => date.getTime() / 1000;

function executionListItem(record: ExecutionRecord) {
  return {
    executionArn: record.executionArn,
    stateMachineArn: record.stateMachineArn,
    name: record.name,
    status: record.status,
    startDate: epochSeconds(record.startDate),
    ...(record.stopDate ? { stopDate: epochSeconds(record.stopDate) } : {}),
  };
}

function describeExecution(record: ExecutionRecord) {
  return {
    ...executionListItem(record),
    input: record.input,
    inputDetails: { included: true },
    ...(record.output !== undefined ? { output: record.output, outputDetails: { included: true } } : {}),
    ...(record.error !== undefined ? { error: record.error } : {}),
    ...(record.cause !== undefined ? { cause: record.cause } : {}),
  };
}

/** The fields of history event details that hold execution data (inputs and outputs), left out when not asked for. */
const EXECUTION_DATA_FIELDS = new Set(['input', 'inputDetails', 'output', 'outputDetails']);

function historyEvent(event: ExecutionHistoryEvent, includeExecutionData: boolean) {
  const json: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(event)) {
    if (field === 'timestamp') {
      json.timestamp = epochSeconds(event.timestamp);
    } else if (field.endsWith('EventDetails') && !includeExecutionData) {
      json[field] = Object.fromEntries(Object.entries(value as object).filter(([name]) => !EXECUTION_DATA_FIELDS.has(name)));
    } else {
      json[field] = value;
    }
  }
  return json;
}

class ProtocolError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

function stringField(body: Record<string, unknown>, field: string, required: true): string;
function stringField(body: Record<string, unknown>, field: string, required: false): string | undefined;
function stringField(body: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) {
    if (required) throw new ProtocolError('ValidationException', `1 validation error detected: '${field}' must not be null.`);
    return undefined;
  }
  if (typeof value !== 'string') throw new ProtocolError('SerializationException', `'${field}' must be a string.`);
  return value;
}

function booleanField(body: Record<string, unknown>, field: string): boolean | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new ProtocolError('SerializationException', `'${field}' must be a boolean.`);
  return value;
}

/** `maxResults` of a listing: 0 or absent is the service's default page of 100; at most 1000. */
function pageSizeOf(body: Record<string, unknown>): number {
  const maxResults = body.maxResults === undefined || body.maxResults === 0 ? 100 : Number(body.maxResults);
  if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > 1000) {
    throw new ProtocolError('ValidationException', "'maxResults' must be from 0 to 1000.");
  }
  return maxResults;
}

/**
 * A page of GetExecutionHistory. The token names the execution, the direction and the id of the next event
 * to answer with: a running execution keeps adding events, and a cursor by id (rather than an offset from
 * the newest end) neither repeats nor skips any while it does. A token used with another execution or
 * direction is refused, as Step Functions refuses it.
 */
function executionHistory(runner: WorkflowRunner, body: Record<string, unknown>) {
  const executionArn = stringField(body, 'executionArn', true);
  const reverseOrder = booleanField(body, 'reverseOrder') ?? false;
  const includeExecutionData = booleanField(body, 'includeExecutionData') ?? true;
  const maxResults = pageSizeOf(body);
  const events = runner.history(executionArn);
  const ordered = reverseOrder ? [...events].reverse() : events;

  let start = 0;
  const token = stringField(body, 'nextToken', false);
  if (token !== undefined) {
    let cursor: { executionArn?: unknown; reverseOrder?: unknown; id?: unknown } | undefined;
    try {
      cursor = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    } catch {
      cursor = undefined;
    }
    start = ordered.findIndex((event) => event.id === cursor?.id);
    if (cursor?.executionArn !== executionArn || cursor?.reverseOrder !== reverseOrder || start < 0) {
      throw new ProtocolError('InvalidToken', 'Invalid Token: nextToken is not valid for this request.');
    }
  }
  const page = ordered.slice(start, start + maxResults);
  const next = ordered[start + maxResults];
  const nextToken = next ? Buffer.from(JSON.stringify({ executionArn, reverseOrder, id: next.id })).toString('base64url') : undefined;
  return { events: page.map((event) => historyEvent(event, includeExecutionData)), ...(nextToken ? { nextToken } : {}) };
}

/** One operation: the request body in, the response body out. */
function operate(runner: WorkflowRunner, operation: string, body: Record<string, unknown>): unknown {
  switch (operation) {
    case 'StartExecution': {
      const record = runner.start({
        stateMachineArn: stringField(body, 'stateMachineArn', true),
        name: stringField(body, 'name', false),
        input: stringField(body, 'input', false),
      });
      return { executionArn: record.executionArn, startDate: epochSeconds(record.startDate) };
    }
    case 'DescribeExecution':
      return describeExecution(runner.describe(stringField(body, 'executionArn', true)));
    case 'ListExecutions': {
      const status = stringField(body, 'statusFilter', false);
      if (status !== undefined && !(EXECUTION_STATUSES as readonly string[]).includes(status)) {
        throw new ProtocolError('ValidationException', `'statusFilter' must be one of ${EXECUTION_STATUSES.join(', ')}.`);
      }
      const maxResults = pageSizeOf(body);
      const records = runner.list({
        stateMachineArn: stringField(body, 'stateMachineArn', true),
        status: status as ExecutionStatus | undefined,
      });
      // The token is the offset of the next page: enough for an in-memory list that only grows at the front
      // within one listing.
      const offset = Number(stringField(body, 'nextToken', false) ?? 0);
      if (!Number.isInteger(offset) || offset < 0) throw new ProtocolError('InvalidToken', 'Invalid Token: nextToken is not valid.');
      const page = records.slice(offset, offset + maxResults);
      const next = offset + maxResults < records.length ? String(offset + maxResults) : undefined;
      return { executions: page.map(executionListItem), ...(next ? { nextToken: next } : {}) };
    }
    case 'GetExecutionHistory':
      return executionHistory(runner, body);
    default:
      throw new ProtocolError('UnknownOperationException', `The local Step Functions endpoint does not serve ${operation || 'this request'}.`);
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function answer(response: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  response.end(text);
}

/** The operations served here when they name one of the runner's state machines, and the field that names it. */
const SERVED_OPERATIONS: Record<string, 'stateMachineArn' | 'executionArn'> = {
  StartExecution: 'stateMachineArn',
  ListExecutions: 'stateMachineArn',
  DescribeExecution: 'executionArn',
  GetExecutionHistory: 'executionArn',
};

/** `…:execution:<state machine>:<name>` → `…:stateMachine:<state machine>`; a state machine ARN as it is. */
function stateMachineOf(arn: string): string {
  if (!arn.includes(':execution:')) return arn;
  return arn.replace(':execution:', ':stateMachine:').split(':').slice(0, 7).join(':');
}

/** Whether the request is for the runner: one of its operations, on one of its state machines or their executions. */
function isForRunner(runner: WorkflowRunner, operation: string, body: Record<string, unknown>): boolean {
  const field = SERVED_OPERATIONS[operation];
  if (field === undefined) return false;
  const arn = body[field];
  if (typeof arn !== 'string') return true; // the runner answers the protocol error
  const own = (Object.keys(STATE_MACHINES) as StateMachineId[]).map((id) => runner.stateMachineArn(id));
  return own.includes(stateMachineOf(arn));
}

/** Sends the request on to `forwardTo` as it came (method, path, headers, body) and its answer back as it comes. */
function forward(forwardTo: URL, request: IncomingMessage, text: string, response: ServerResponse): Promise<void> {
  return new Promise((done) => {
    const headers = { ...request.headers, host: forwardTo.host, 'content-length': String(Buffer.byteLength(text)) };
    const onward = httpRequest(
      { protocol: forwardTo.protocol, hostname: forwardTo.hostname, port: forwardTo.port, method: request.method, path: request.url, headers },
      (answered) => {
        response.writeHead(answered.statusCode ?? 502, answered.headers);
        answered.pipe(response);
        answered.on('end', () => done());
      },
    );
    onward.on('error', (error) => {
      answer(response, 502, { __type: 'InternalFailure', message: `The emulator did not answer: ${error.message}` }, 'InternalFailure');
      done();
    });
    onward.end(text);
  });
}

async function handle(runner: WorkflowRunner, request: IncomingMessage, response: ServerResponse, forwardTo?: URL): Promise<void> {
  try {
    const target = String(request.headers['x-amz-target'] ?? '');
    const text = await readBody(request);
    let body: unknown;
    try {
      body = text.length === 0 ? {} : JSON.parse(text);
    } catch {
      body = undefined;
    }
    const operation = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '';
    const forRunner = typeof body === 'object' && body !== null && !Array.isArray(body) && isForRunner(runner, operation, body as Record<string, unknown>);
    if (forwardTo && !forRunner) {
      await forward(forwardTo, request, text, response);
      return;
    }
    if (request.method !== 'POST' || !target.startsWith(TARGET_PREFIX)) {
      throw new ProtocolError('UnknownOperationException', 'Expected a POST with an X-Amz-Target header of AWSStepFunctions.<Operation>.');
    }
    if (body === undefined) throw new ProtocolError('SerializationException', 'The request body is not JSON.');
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ProtocolError('SerializationException', 'The request body must be a JSON object.');
    }
    answer(response, 200, operate(runner, operation, body as Record<string, unknown>));
  } catch (error) {
    if (error instanceof StepFunctionsApiError || error instanceof ProtocolError) {
      const status = error instanceof ProtocolError ? error.status : 400;
      answer(response, status, { __type: error.code, message: error.message }, error.code);
    } else {
      answer(response, 500, { __type: 'InternalFailure', message: String((error as Error)?.message ?? error) }, 'InternalFailure');
    }
  }
}

/**
 * Serves the runner on 127.0.0.1:port (a free port when none is given); with `forwardTo`, every request not
 * for the runner's own state machines goes on to that endpoint (the emulator).
 */
export async function startSfnEndpoint(runner: WorkflowRunner, options: { port?: number; forwardTo?: string } = {}): Promise<SfnEndpoint> {
  const forwardTo = options.forwardTo ? new URL(options.forwardTo) : undefined;
  const server: Server = createServer((request, response) => void handle(runner, request, response, forwardTo));
  await new Promise<void>((listening, failed) => {
    server.once('error', failed);
    server.listen(options.port ?? 0, '127.0.0.1', () => listening());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: () =>
      new Promise<void>((closed) => {
        server.close(() => closed());
        server.closeAllConnections();
      }),
  };
}
