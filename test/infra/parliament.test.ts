/**
 * parliament, the IAM policy linter (pinned in requirements.txt), over every policy document mfenv writes:
 * the ones the step Lambdas send to AWS (lambdas/core/policies.ts), built for a sample environment, and
 * every one in the synthesized template (role policies, the permissions boundary, role trusts, the API's
 * resource policy), with the CloudFormation values filled in as a deployment would. Every finding is fixed
 * or acknowledged, with its reason, in ./linter-acknowledgements.ts; an acknowledgement that no longer
 * answers a finding fails too, so none outlives its cause.
 */
import { SAMPLE, SAMPLE_IDS, concrete } from '../support/concrete-template';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensurePythonEnvironment, VENV_BIN } from '../../infra/local/emulator';
import { CONTEXT } from '../../infra/config';
import { namesFor } from '../../lambdas/core/naming';
import * as policies from '../../lambdas/core/policies';
import {
  accessRolePolicy,
  accessRoleTrustPolicy,
  batchJobLogGroupArn,
  bucketPolicy,
  instanceRolePolicy,
  instanceRoleTrustPolicy,
  jobRolePolicy,
  jobRoleTrustPolicy,
  permissionsBoundaryPolicy,
  eventsRolePolicy,
  eventsRoleTrustPolicy,
  sfnRolePolicy,
  sfnRoleTrustPolicy,
} from '../../lambdas/core/policies';
import { PARLIAMENT_ACKNOWLEDGEMENTS, type ParliamentAcknowledgement } from './linter-acknowledgements';
import { type Synthesized, synthesize } from './synth';

/**
 * The other deployment the template is linted as: every optional setting that adds or changes a statement
 * (organisation, narrowed callers, admins, a named Batch service role).
 */
const CONFIGURED_CONTEXT = {
  [CONTEXT.admins]: [`arn:aws:iam::${SAMPLE.accountId}:role/PlatformAdmin`],
  [CONTEXT.organizationId]: 'o-abcd123456',
  [CONTEXT.callerPrincipalArns]: [
    `arn:aws:iam::${SAMPLE.accountId}:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_DataScience_*`,
    `arn:aws:iam::${SAMPLE.accountId}:role/PlatformAdmin`,
  ],
  [CONTEXT.callerPrincipalTag]: 'team=data-science',
  [CONTEXT.batchServiceRoleArn]: `arn:aws:iam::${SAMPLE.accountId}:role/service-role/AWSBatchServiceRole`,
  // The optional parts of the stack, so their roles are linted too.
  [CONTEXT.idleExpiryDays]: 14,
  [CONTEXT.alarms]: true,
};

type PolicyJson = { Version?: string; Statement: object[] };

/** One document to lint, named as its acknowledgements name it. */
interface LintedDocument {
  /** A function of lambdas/core/policies.ts (with its variant), or a template resource's logical id. */
  name: string;
  policy: PolicyJson;
  /** For a role's trust policy: the role's ARN. */
  trustOf?: string;
}

interface Finding {
  document: string;
  issue: string;
  severity: string;
  /** What the finding is about: the actions it names, or its detail (see subjectOf). */
  subject: string;
}

/** The documents the IAM and bucket steps write, for environment `alice` of the sample deployment. */
function codeDocuments(): LintedDocument[] {
  const { accountId, region, partition, prefix, stackName } = SAMPLE;
  const names = namesFor({ prefix, stackName, accountId, region, partition }, 'alice');
  const iamArn = (path: string) => `arn:${partition}:iam::${accountId}:${path}`;
  const identityCenterSession = (permissionSet: string, person: string) =>
    `arn:${partition}:sts::${accountId}:assumed-role/AWSReservedSSO_${permissionSet}_0123456789abcdef/${person}`;
  return [
    { name: 'jobRoleTrustPolicy', policy: jobRoleTrustPolicy(accountId), trustOf: names.jobRoleArn },
    { name: 'jobRolePolicy', policy: jobRolePolicy(names) },
    { name: 'instanceRoleTrustPolicy', policy: instanceRoleTrustPolicy(), trustOf: names.instanceRoleArn },
    // Batch names the compute environment's ECS cluster `<compute environment>_Batch_<uuid>`.
    {
      name: 'instanceRolePolicy',
      policy: instanceRolePolicy(
        `arn:${partition}:ecs:${region}:${accountId}:cluster/${names.computeEnvironmentName}_Batch_0a1b2c3d-4e5f-6789-abcd-ef0123456789`,
        batchJobLogGroupArn(region, accountId, partition),
      ),
    },
    { name: 'accessRolePolicy', policy: accessRolePolicy(names, batchJobLogGroupArn(region, accountId, partition)) },
    // Scheduled flows (the scheduling steps write them).
    { name: 'sfnRoleTrustPolicy', policy: sfnRoleTrustPolicy(accountId), trustOf: names.sfnRoleArn },
    { name: 'sfnRolePolicy', policy: sfnRolePolicy(names) },
    { name: 'eventsRoleTrustPolicy', policy: eventsRoleTrustPolicy(accountId), trustOf: names.eventsRoleArn },
    { name: 'eventsRolePolicy', policy: eventsRolePolicy(names) },
    // Each kind of owner and of admin writes its own conditions (lambdas/core/policies.ts, principalConditions).
    {
      name: 'accessRoleTrustPolicy(user owner, every kind of admin)',
      policy: accessRoleTrustPolicy({
        owner: iamArn('user/alice'),
        ownerUniqueId: 'AIDAALICE0000000001',
        admins: [iamArn('role/PlatformAdmin'), identityCenterSession('Admin', 'carol'), iamArn('user/ops/dave'), iamArn('root')],
      }),
      trustOf: names.accessRoleArn,
    },
    {
      name: 'accessRoleTrustPolicy(role owner)',
      policy: accessRoleTrustPolicy({ owner: iamArn('role/data-science/alice'), ownerUniqueId: 'AROAALICE0000000001', admins: [] }),
      trustOf: names.accessRoleArn,
    },
    {
      name: 'accessRoleTrustPolicy(Identity Center owner)',
      policy: accessRoleTrustPolicy({ owner: identityCenterSession('DataScience', 'alice@example.com'), admins: [] }),
      trustOf: names.accessRoleArn,
    },
    { name: 'bucketPolicy', policy: bucketPolicy(names, true)! },
    {
      name: 'bucketPolicy(network isolation)',
      policy: bucketPolicy(names, true, { vpcId: SAMPLE_IDS.vpc, s3EndpointId: SAMPLE_IDS.s3Endpoint, cidr: '10.20.128.0/23' })!,
    },
    { name: 'permissionsBoundaryPolicy', policy: permissionsBoundaryPolicy(prefix, partition, { accountId, region }) },
  ];
}

/** Resource types whose properties hold a policy document, and which of them this test lints. */
const POLICY_PROPERTIES: Record<string, string[]> = {
  'AWS::IAM::Policy': ['PolicyDocument'],
  'AWS::IAM::ManagedPolicy': ['PolicyDocument'],
  'AWS::IAM::Role': ['AssumeRolePolicyDocument'],
  'AWS::ApiGateway::RestApi': ['Policy'],
};
/** Property names that carry a policy document on any resource type: a template using one elsewhere needs this test extended. */
const POLICY_PROPERTY_NAMES = ['PolicyDocument', 'AssumeRolePolicyDocument', 'Policy', 'Policies', 'KeyPolicy', 'PolicyText'];


/** Every policy document of the template, named by its resource's logical id (`.trust`: a role's trust; `.policy`: the API's). */
function templateDocuments(json: Synthesized['json']): LintedDocument[] {
  const { accountId, region, partition } = SAMPLE;
  const documents: LintedDocument[] = [];
  for (const [id, resource] of Object.entries(json.Resources)) {
    const properties = resource.Properties ?? {};
    switch (resource.Type) {
      case 'AWS::IAM::Policy':
      case 'AWS::IAM::ManagedPolicy':
        documents.push({ name: id, policy: concrete(json, properties.PolicyDocument) });
        break;
      case 'AWS::IAM::Role':
        documents.push({ name: `${id}.trust`, policy: concrete(json, properties.AssumeRolePolicyDocument), trustOf: `arn:${partition}:iam::${accountId}:role/${id}` });
        break;
      case 'AWS::ApiGateway::RestApi': {
        // As API Gateway stores it: `execute-api:/...` stands for this API's own ARN.
        const apiArn = `arn:${partition}:execute-api:${region}:${accountId}:${SAMPLE_IDS.api}`;
        const policy = JSON.parse(JSON.stringify(concrete(json, properties.Policy)).replaceAll('"execute-api:/', `"${apiArn}/`));
        documents.push({ name: `${id}.policy`, policy });
        break;
      }
    }
  }
  return documents;
}

/**
 * parliament lints identity and resource policies, and takes a statement without Resource as malformed
 * (and then checks nothing else in it). A trust policy is the role's own resource policy: its statements
 * are linted with the role as their Resource, so the principals, actions and conditions are checked too.
 */
function asLinted({ policy, trustOf }: LintedDocument): PolicyJson {
  if (trustOf === undefined) return policy;
  return { ...policy, Statement: policy.Statement.map((statement) => ({ ...statement, Resource: trustOf })) };
}

/**
 * Runs parliament's own entry points (as its command line does, with its community auditors too) once
 * over every document: [name, policy] pairs on stdin, its findings as JSON on stdout. Its command line
 * needs a file per document and copies each one into /tmp/parliament.log; the library does neither.
 */
const PARLIAMENT_RUNNER = `
import json, sys, warnings
from pathlib import Path
# parliament imports pkg_resources, which warns that it is deprecated: not ours to act on.
warnings.simplefilter("ignore")
import parliament
from parliament import analyze_policy_string, config, enhance_finding, override_config

override_config(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
findings = []
for name, policy in json.load(sys.stdin):
    analyzed = analyze_policy_string(json.dumps(policy), name, include_community_auditors=True, config=config)
    for finding in analyzed.findings:
        finding = enhance_finding(finding)
        findings.append({"document": name, "issue": finding.issue, "severity": finding.severity, "detail": finding.detail, "location": finding.location})
json.dump({"version": parliament.__version__, "findings": findings}, sys.stdout, default=str)
`;

/** What a finding is about, in one line: the actions it names, else its detail, else the text it points at. */
function subjectOf(detail: unknown, location: Record<string, unknown>): string {
  if (Array.isArray(location.actions)) return [...location.actions].sort().join(', ');
  if (Array.isArray(detail)) {
    const parts = detail.map((item) => (typeof item === 'object' && item !== null && 'action' in item ? String(item.action) : String(item)));
    return [...new Set(parts)].sort().join(', ');
  }
  if (typeof detail === 'string' && detail !== '') return detail;
  return typeof location.string === 'string' ? location.string : '';
}

function lint(documents: LintedDocument[]): { version: string; findings: Finding[] } {
  const run = spawnSync(join(VENV_BIN, 'python'), ['-c', PARLIAMENT_RUNNER], {
    input: JSON.stringify(documents.map((document) => [document.name, asLinted(document)])),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.status !== 0) throw new Error(`parliament failed (exit ${run.status}):\n${run.stderr}`);
  type Reported = Omit<Finding, 'subject'> & { detail: unknown; location: Record<string, unknown> };
  const output = JSON.parse(run.stdout) as { version: string; findings: Reported[] };
  return {
    version: output.version,
    findings: output.findings.map(({ document, issue, severity, detail, location }) => ({ document, issue, severity, subject: subjectOf(detail, location) })),
  };
}

const answers = (acknowledgement: ParliamentAcknowledgement) => (finding: Finding) =>
  finding.document === acknowledgement.document && finding.issue === acknowledgement.issue && finding.subject === acknowledgement.subject;

const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFO', 'MUTE'];

describe('parliament over every IAM policy document', () => {
  let documents: LintedDocument[];
  let templates: Synthesized['json'][];
  let findings: Finding[];

  beforeAll(() => {
    // Installs the pinned requirements on a fresh machine (once; a no-op when .venv matches them).
    ensurePythonEnvironment();
    templates = [synthesize().json, synthesize(CONFIGURED_CONTEXT).json];
    // A resource whose document is the same in both deployments is linted once.
    const byName = new Map<string, LintedDocument[]>();
    for (const document of [...codeDocuments(), ...templates.flatMap(templateDocuments)]) {
      const same = byName.get(document.name) ?? [];
      if (!same.some((known) => JSON.stringify(known.policy) === JSON.stringify(document.policy))) same.push(document);
      byName.set(document.name, same);
    }
    documents = [...byName.values()].flat();
    const result = lint(documents);
    findings = result.findings;

    const tally = (list: Finding[]) => SEVERITIES.map((severity) => `${list.filter((f) => f.severity === severity).length} ${severity}`).join(', ');
    const acknowledged = findings.filter((finding) => PARLIAMENT_ACKNOWLEDGEMENTS.some((acknowledgement) => answers(acknowledgement)(finding)));
    console.info(
      `parliament ${result.version}: ${documents.length} documents, ${findings.length} findings (${tally(findings)}); ` +
        `acknowledged ${acknowledged.length} (${tally(acknowledged)}) with ${PARLIAMENT_ACKNOWLEDGEMENTS.length} acknowledgements`,
    );
  }, 600_000);

  it('reads every policy document of the template, and every one lambdas/core/policies.ts builds', () => {
    // prepare
    const linted = new Set(documents.map((document) => document.name.replace(/\.(trust|policy)$/, '')));
    const builders = Object.entries(policies)
      .filter(([name, value]) => typeof value === 'function' && name.endsWith('Policy'))
      .map(([name]) => name);

    // act
    const unreadInTemplate = templates.flatMap((json) =>
      Object.entries(json.Resources).flatMap(([id, resource]) => {
        const properties = Object.keys(resource.Properties ?? {}).filter((property) => POLICY_PROPERTY_NAMES.includes(property));
        const handled = POLICY_PROPERTIES[resource.Type] ?? [];
        return properties.filter((property) => !handled.includes(property) || !linted.has(id)).map((property) => `${id} (${resource.Type}).${property}`);
      }),
    );
    const unreadBuilders = builders.filter((builder) => ![...linted].some((name) => name === builder || name.startsWith(`${builder}(`)));

    // assess
    expect(unreadInTemplate).toEqual([]);
    expect(builders.length).toBeGreaterThan(5);
    expect(unreadBuilders).toEqual([]);
  });

  it('finds nothing that is not acknowledged', () => {
    // prepare
    const acknowledgements = PARLIAMENT_ACKNOWLEDGEMENTS;

    // act
    const unacknowledged = findings.filter((finding) => !acknowledgements.some((acknowledgement) => answers(acknowledgement)(finding)));

    // assess
    expect(unacknowledged).toEqual([]);
  });

  it('keeps no acknowledgement that answers no finding, nor one without a reason', () => {
    // prepare
    const acknowledgements = PARLIAMENT_ACKNOWLEDGEMENTS;

    // act
    const stale = acknowledgements.filter((acknowledgement) => !findings.some(answers(acknowledgement)));
    const unexplained = acknowledgements.filter((acknowledgement) => acknowledgement.reason.length < 60);

    // assess
    expect(stale.map(({ document, issue, subject }) => ({ document, issue, subject }))).toEqual([]);
    expect(unexplained).toEqual([]);
  });
});
