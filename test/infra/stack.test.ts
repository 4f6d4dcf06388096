/**
 * The stack as a whole: nothing in it bills while idle, its outputs, and cdk-nag's AwsSolutions pack with
 * every finding either fixed or acknowledged on the one construct it concerns, with a reason.
 */
import { App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readConfig } from '../../infra/config';
import { acknowledgements } from '../../infra/nag';
import { MfenvStack } from '../../infra/stack';
import { scratchDir } from '../support/scratch';
import { type Synthesized, cdkJsonContext, resourcesOfType, synthesize } from './synth';

/** cdk-nag reports a resource by its construct path (PolicyValidationPluginReport types it as a resource). */
const constructPathOf = (resource: object) => (resource as { constructPath: string }).constructPath;

/** Resource types that bill by the hour, or by provisioned capacity, whether used or not. */
const IDLE_COST_TYPES = [
  'AWS::EC2::NatGateway',
  'AWS::EC2::EIP',
  'AWS::EC2::Instance',
  'AWS::EC2::VPCEndpoint',
  'AWS::RDS::DBInstance',
  'AWS::RDS::DBCluster',
  'AWS::ElasticLoadBalancingV2::LoadBalancer',
  'AWS::Lambda::Version',
  'AWS::Lambda::Alias',
  'AWS::WAFv2::WebACL',
  'AWS::KMS::Key',
  'AWS::Batch::ComputeEnvironment',
];

describe('the bootstrap stack', () => {
  let synthesized: Synthesized;
  beforeAll(() => {
    synthesized = synthesize();
  });

  it('costs nothing while idle: no NAT, no EIP, no servers, no provisioned capacity', () => {
    // prepare
    const { json } = synthesized;

    // act
    // A Gateway VPC endpoint (the S3 one network isolation needs) is free; an Interface endpoint bills by the hour.
    const billed = Object.entries(json.Resources).filter(
      ([, resource]) => IDLE_COST_TYPES.includes(resource.Type) && !(resource.Type === 'AWS::EC2::VPCEndpoint' && resource.Properties?.VpcEndpointType === 'Gateway'),
    );
    expect(resourcesOfType(json, 'AWS::EC2::VPCEndpoint').map(([, endpoint]) => endpoint.Properties!.VpcEndpointType)).toEqual(['Gateway']);

    // assess
    expect(billed).toEqual([]);
    for (const [, fn] of resourcesOfType(json, 'AWS::Lambda::Function')) {
      expect(fn.Properties!.ProvisionedConcurrencyConfig).toBeUndefined();
      expect(fn.Properties!.ReservedConcurrentExecutions).toBeUndefined();
    }
    for (const [, table] of resourcesOfType(json, 'AWS::DynamoDB::Table')) {
      expect(table.Properties!.BillingMode).toBe('PAY_PER_REQUEST');
    }
    for (const [, stage] of resourcesOfType(json, 'AWS::ApiGateway::Stage')) {
      expect(stage.Properties!.CacheClusterEnabled).not.toBe(true);
    }
  });

  it('outputs the API URL, the region, the registry table and the boundary', () => {
    // prepare
    const { json } = synthesized;

    // act
    const outputs = json.Outputs ?? {};

    // assess
    expect(Object.keys(outputs).sort()).toEqual(['ApiUrl', 'PermissionsBoundaryArn', 'Region', 'RegistryTableName']);
    expect(JSON.stringify(outputs.ApiUrl.Value)).toContain('.execute-api.');
    expect(outputs.Region.Value).toEqual({ Ref: 'AWS::Region' });
  });

  it('is environment-agnostic, so `cdk synth` needs no credentials', () => {
    // prepare
    const { stack } = synthesized;

    // act
    const environment = stack.environment;

    // assess
    expect(environment).toBe('aws://unknown-account/unknown-region');
    expect(stack.stackName).toBe('mfenv');
  });

  it('passes the AwsSolutions checks (with its reasoned acknowledgements)', () => {
    // prepare
    const { stack } = synthesized;

    // act
    const report = new AwsSolutionsChecks(stack).validateScope(stack);

    // assess
    expect(report.violations.map((violation) => `${violation.ruleName} @ ${violation.violatingResources.map(constructPathOf).join(', ')}`)).toEqual([]);
    expect(report.success).toBe(true);
  });
});

describe('the cdk-nag acknowledgements', () => {
  it('each answer a finding the pack really reports on that construct, and every finding has one', () => {
    // prepare: the same stack, without its acknowledgements.
    const app = new App({ outdir: scratchDir('synth'), context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    const bare = new MfenvStack(app, 'Mfenv', { config: readConfig(app.node), acknowledgeNagFindings: false });
    const acknowledged = acknowledgements(bare, 'mfenv');

    // act
    const report = new AwsSolutionsChecks(bare).validateScope(bare);
    const findings = report.violations.flatMap((violation) =>
      violation.violatingResources.map((resource) => ({ rule: violation.ruleName, path: constructPathOf(resource) })),
    );

    // assess: every acknowledged rule is found on (a resource under) its construct, and nothing else is found.
    const answers = ({ construct, rule }: { construct: { node: { path: string } }; rule: string }) => (finding: { rule: string; path: string }) =>
      finding.rule === rule && finding.path.startsWith(`${construct.node.path}/`);
    for (const acknowledgement of acknowledged) {
      const { construct, rule, reason } = acknowledgement;
      expect({ rule, path: construct.node.path, found: findings.some(answers(acknowledgement)) }).toEqual({ rule, path: construct.node.path, found: true });
      expect(reason.length).toBeGreaterThan(60);
    }
    const unexplained = findings.filter((finding) => !acknowledged.some((acknowledgement) => answers(acknowledgement)(finding)));
    expect(unexplained).toEqual([]);
  });
});
