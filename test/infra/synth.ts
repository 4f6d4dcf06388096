/**
 * Builds the stack the way `cdk synth` does (infra/app.ts: the cdk.json context, the AwsSolutions checks),
 * with context overrides per test. Bundling the Lambdas takes seconds per function, so it is skipped unless
 * a test is about the bundles: CDK then stages each function's code unbundled, and the template is the same.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { type MfenvStack, buildMfenvApp } from '../../infra/stack';
import { scratchDir } from '../support/scratch';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** The context `cdk synth` reads from cdk.json. */
export function cdkJsonContext(): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context;
}

export interface Synthesized {
  app: App;
  stack: MfenvStack;
  template: Template;
  /** The raw template, for checks that walk it. */
  json: { Resources: Record<string, { Type: string; Properties?: Record<string, any>; DeletionPolicy?: string; UpdateReplacePolicy?: string }>; Outputs?: Record<string, any> };
}

export function synthesize(context: Record<string, unknown> = {}, options: { bundle?: boolean } = {}): Synthesized {
  const app = new App({
    outdir: scratchDir('synth'),
    context: {
      ...cdkJsonContext(),
      ...context,
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
    },
  });
  const stack = buildMfenvApp(app);
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() as Synthesized['json'] };
}

/** Logical id of a construct's CloudFormation resource (its default child). */
export function logicalIdOf(construct: { node: { defaultChild?: unknown } }): string {
  const resource = construct.node.defaultChild as import('aws-cdk-lib').CfnElement;
  return Stack.of(resource).getLogicalId(resource);
}

/**
 * The folder of a function's staged bundle (infra/lambda-bundle.ts writes BUNDLE_FILE and its map there): the
 * cloud assembly holds it as asset.<hash>, uploaded as <hash>.zip. Only for a synth that built the bundles.
 */
export function bundleDirOf(synthesized: Synthesized, fn: { node: { defaultChild?: unknown } }): string {
  const key = synthesized.json.Resources[logicalIdOf(fn)]!.Properties!.Code.S3Key as string;
  return path.join(synthesized.app.outdir, `asset.${key.replace(/\.zip$/, '')}`);
}

/** Every resource of one type, as [logicalId, resource]. */
export function resourcesOfType(json: Synthesized['json'], type: string) {
  return Object.entries(json.Resources).filter(([, resource]) => resource.Type === type);
}

/**
 * Replaces CloudFormation intrinsics by readable strings: `{Ref: X}` → `${X}`, `{Fn::GetAtt: [X, Y]}` →
 * `${X.Y}`, and `Fn::Join` / `Fn::Sub` of those by the joined text, so a policy reads as its ARNs.
 */
export function readable(value: unknown): any {
  if (Array.isArray(value)) return value.map(readable);
  if (value && typeof value === 'object') {
    const object = value as Record<string, any>;
    const keys = Object.keys(object);
    if (keys.length === 1) {
      const [key] = keys;
      if (key === 'Ref') return `\${${object.Ref}}`;
      if (key === 'Fn::GetAtt') return `\${${object['Fn::GetAtt'].join('.')}}`;
      if (key === 'Fn::Join') {
        const [separator, parts] = object['Fn::Join'];
        const joined = readable(parts);
        if (joined.every((part: unknown) => typeof part === 'string')) return joined.join(separator);
      }
    }
    return Object.fromEntries(keys.map((key) => [key, readable(object[key])]));
  }
  return value;
}
