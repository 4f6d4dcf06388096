/**
 * The synthesized template as one sample deployment would see it: CloudFormation's pseudo parameters and
 * references turned into the values AWS would give them. The policy tests (parliament, the IAM simulator)
 * read the template's documents through it, so they judge what a deployment would really hold.
 */
import { type Synthesized, readable } from '../infra/synth';

/** Where the sample deployment lives: the values CloudFormation would give the template's pseudo parameters. */
export const SAMPLE = { accountId: '123456789012', region: 'eu-west-1', partition: 'aws', urlSuffix: 'amazonaws.com', prefix: 'mfenv', stackName: 'mfenv' };
/** Ids AWS makes at deploy time, for the sample deployment. */
export const SAMPLE_IDS = {
  api: 'a1b2c3d4e5',
  vpc: 'vpc-0123456789abcdef0',
  routeTable: 'rtb-0123456789abcdef0',
  subnet: 'subnet-0123456789abcdef0',
  s3Endpoint: 'vpce-0123456789abcdef0',
  securityGroup: 'sg-0123456789abcdef0',
};

/**
 * The template's value as a deployment sees it: `readable` turns the intrinsics into `${...}` text; the
 * pseudo parameters become the sample's, and a reference to a resource becomes what CloudFormation would
 * return for it (an ARN, or an EC2 id), its logical id standing in for a generated name. IAM's own policy
 * variables (`${aws:...}`) stay as they are.
 */
export function concrete(json: Synthesized['json'], value: unknown): any {
  const { accountId, region, partition, urlSuffix } = SAMPLE;
  const pseudo: Record<string, string> = { 'AWS::AccountId': accountId, 'AWS::Region': region, 'AWS::Partition': partition, 'AWS::URLSuffix': urlSuffix };
  const text = JSON.stringify(readable(value)).replace(/\$\{([A-Za-z0-9:]+)(?:\.(\w+))?\}/g, (token, id: string, attribute?: string) => {
    if (pseudo[id] !== undefined) return pseudo[id];
    if (id.startsWith('aws:')) return token;
    const resource = json.Resources[id];
    const properties = resource?.Properties ?? {};
    // Keyed by type (a Ref) or type.attribute (a GetAtt).
    const sample: Record<string, () => string> = {
      'AWS::Logs::LogGroup.Arn': () => `arn:${partition}:logs:${region}:${accountId}:log-group:${id}:*`,
      'AWS::DynamoDB::Table.Arn': () => `arn:${partition}:dynamodb:${region}:${accountId}:table/${id}`,
      'AWS::Lambda::Function.Arn': () => `arn:${partition}:lambda:${region}:${accountId}:function:${id}`,
      'AWS::IAM::Role.Arn': () => `arn:${partition}:iam::${accountId}:role/${id}`,
      'AWS::IAM::ManagedPolicy': () => `arn:${partition}:iam::${accountId}:policy${properties.Path ?? '/'}${properties.ManagedPolicyName ?? id}`,
      'AWS::StepFunctions::StateMachine': () => `arn:${partition}:states:${region}:${accountId}:stateMachine:${properties.StateMachineName ?? id}`,
      'AWS::EC2::VPC': () => SAMPLE_IDS.vpc,
      'AWS::EC2::RouteTable': () => SAMPLE_IDS.routeTable,
      'AWS::EC2::Subnet': () => SAMPLE_IDS.subnet,
      'AWS::EC2::VPCEndpoint': () => SAMPLE_IDS.s3Endpoint,
      'AWS::EC2::SecurityGroup.GroupId': () => SAMPLE_IDS.securityGroup,
    };
    const valueOf = resource && sample[attribute === undefined ? resource.Type : `${resource.Type}.${attribute}`];
    // A new kind of reference in a policy must be given its sample value here knowingly.
    if (!valueOf) throw new Error(`No sample value for ${token} (${resource?.Type ?? 'no such resource'}).`);
    return valueOf();
  });
  return JSON.parse(text);
}
