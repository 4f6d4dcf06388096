/**
 * What a function's code does, read from the source files its bundle is made of (esbuild's metafile):
 * the settings it reads and the AWS SDK commands it sends.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import type { SettingName } from '../../lambdas/core/settings';
import { settingsReadByEntry } from '../../infra/functions';
import { treeShakenSections } from '../../infra/lambda-bundle';
import { PROJECT_ROOT } from './synth';

/** The project's own source files a bundle of `entry` includes, with their text. */
export async function bundledSources(entry: string): Promise<{ file: string; source: string }[]> {
  const { metafile } = await build({
    entryPoints: [path.join(PROJECT_ROOT, entry)],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
  });
  return Object.keys(metafile.inputs)
    .filter((file) => file.startsWith('lambdas/'))
    .map((file) => ({ file, source: readFileSync(path.join(PROJECT_ROOT, file), 'utf8') }));
}

/**
 * The settings a bundle's code reads (`settings.<name>()` calls, and `currentDeployment()`): the list the Lambda
 * build checks at init (infra/functions.ts), read the same way here.
 */
export async function settingsReadBy(entry: string): Promise<SettingName[]> {
  return settingsReadByEntry(entry);
}

/** IAM actions whose name differs from the SDK command's. */
const ACTION_OF_COMMAND: Record<string, string | readonly string[]> = {
  's3:DeleteObjects': 's3:DeleteObject',
  's3:HeadBucket': 's3:ListBucket',
  's3:HeadObject': 's3:GetObject',
  's3:ListObjectsV2': 's3:ListBucket',
  's3:ListObjectVersions': 's3:ListBucketVersions',
  's3:ListMultipartUploads': 's3:ListBucketMultipartUploads',
  's3:PutBucketEncryption': 's3:PutEncryptionConfiguration',
  's3:GetBucketEncryption': 's3:GetEncryptionConfiguration',
  's3:PutPublicAccessBlock': 's3:PutBucketPublicAccessBlock',
  's3:GetPublicAccessBlock': 's3:GetBucketPublicAccessBlock',
  'dynamodb:Get': 'dynamodb:GetItem',
  'dynamodb:Put': 'dynamodb:PutItem',
  'dynamodb:Update': 'dynamodb:UpdateItem',
  'dynamodb:Delete': 'dynamodb:DeleteItem',
  // IAM has no TransactWriteItems action: a transaction is authorized item by item, as the PutItem,
  // UpdateItem, DeleteItem or ConditionCheckItem it holds. The registry's transactions (lambdas/core/registry-table.ts and environment-records.ts:
  // an environment's creation, its counted status changes) hold only Puts and Updates.
  'dynamodb:TransactWrite': ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
  'dynamodb:TransactWriteItems': ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
};

/** IAM service prefix of each SDK package the code imports commands from. */
const SERVICE_OF_PACKAGE: Record<string, string> = {
  '@aws-sdk/client-batch': 'batch',
  '@aws-sdk/client-dynamodb': 'dynamodb',
  '@aws-sdk/lib-dynamodb': 'dynamodb',
  '@aws-sdk/client-ec2': 'ec2',
  '@aws-sdk/client-eventbridge': 'events',
  '@aws-sdk/client-iam': 'iam',
  '@aws-sdk/client-s3': 's3',
  '@aws-sdk/client-service-quotas': 'servicequotas',
  '@aws-sdk/client-sfn': 'states',
};

/** The IAM actions of every SDK command the bundled code of `entry` constructs (`new XxxCommand(`). */
export async function actionsCalledBy(entry: string): Promise<string[]> {
  const sources = new Map((await bundledSources(entry)).map(({ file, source }) => [file, source]));
  const actions = new Set<string>();
  for (const { file, code } of treeShakenSections(entry)) {
    // Which package each command name comes from, as the file's own imports say.
    const serviceOfName = new Map<string, string>();
    for (const [, names, pkg] of (sources.get(file) ?? '').matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*'(@aws-sdk\/[\w-]+)'/g)) {
      const service = SERVICE_OF_PACKAGE[pkg!];
      if (!service) continue;
      for (const name of names!.split(',').map((part) => part.trim().split(/\s+as\s+/)[0]!.replace(/^type\s+/, ''))) serviceOfName.set(name, service);
    }
    // esbuild writes `new import_pkg.XxxCommand(` for CommonJS packages, and may suffix a renamed binding with digits.
    for (const [, command] of code.matchAll(/\bnew\s+(?:[\w$]+\.)?(\w+?)Command\d*\(/g)) {
      const service = serviceOfName.get(`${command}Command`);
      if (!service) throw new Error(`${file}: cannot tell which AWS service ${command}Command belongs to; add its package to SERVICE_OF_PACKAGE.`);
      const action = `${service}:${command}`;
      for (const mapped of [ACTION_OF_COMMAND[action] ?? action].flat()) actions.add(mapped);
    }
  }
  return [...actions].sort();
}
