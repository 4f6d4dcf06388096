/**
 * checkov, the infrastructure-as-code scanner (pinned in requirements-checkov.txt, installed into
 * .venv-checkov by infra/local/install-python.sh), over the synthesized CloudFormation template: its
 * CloudFormation checks, run once, offline. Every failed check is fixed or acknowledged, with its reason, in
 * ./linter-acknowledgements.ts; an acknowledgement that no longer answers a failed check fails too, so none
 * outlives its cause.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTEXT } from '../../infra/config';
import { CHECKOV_ACKNOWLEDGEMENTS, type CheckovAcknowledgement } from './linter-acknowledgements';
import { PROJECT_ROOT, type Synthesized, synthesize } from './synth';

const VENV = join(PROJECT_ROOT, '.venv-checkov');
const CHECKOV = join(VENV, 'bin', 'checkov');
const REQUIREMENTS = join(PROJECT_ROOT, 'requirements-checkov.txt');
/** Where install-python.sh records the hash of the requirements file it installed. */
const STAMP = join(VENV, '.requirements.sha256');

/** One check's result on one resource. */
interface Result {
  check: string;
  /** The resource's logical id. */
  resource: string;
  type: string;
  name: string;
}

interface Scan {
  version: string;
  resourceCount: number;
  parsingErrors: string[];
  passed: Result[];
  failed: Result[];
  skipped: Result[];
}

/** The installed checkov, or an error saying how to install it: the test never skips. */
function installedCheckov(): string {
  const install = 'Run `bash infra/local/install-python.sh` (it installs .venv and .venv-checkov from their pinned requirements).';
  if (!existsSync(CHECKOV)) throw new Error(`checkov is not installed in .venv-checkov. ${install}`);
  const want = createHash('sha256').update(readFileSync(REQUIREMENTS)).digest('hex');
  const installed = existsSync(STAMP) ? readFileSync(STAMP, 'utf8').trim() : '';
  // Another checkov version brings other checks: results only count for the pinned one.
  if (installed !== want) throw new Error(`.venv-checkov does not match requirements-checkov.txt. ${install}`);
  return CHECKOV;
}

/** Runs checkov's CloudFormation checks over the template, in a directory of its own, and reads its JSON report. */
function scan(checkov: string, template: Synthesized['json']): Scan {
  const dir = mkdtempSync(join(tmpdir(), 'mfenv-checkov-'));
  try {
    writeFileSync(join(dir, 'template.json'), JSON.stringify(template, null, 2));
    const run = spawnSync(checkov, ['-f', 'template.json', '--framework', 'cloudformation', '-o', 'json', '--skip-download'], {
      cwd: dir,
      // Only what checkov needs: no API key of the developer's can reach it (with one it would upload the
      // results), and HOME and TMPDIR in the scratch directory keep out a personal ~/.checkov.yaml and keep in
      // the caches it writes.
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        TMPDIR: dir,
        // checkov asks PyPI for a newer version of itself on every start unless told not to; --skip-download
        // stops the other call it makes without an API key (its platform's check metadata).
        CKV_SKIP_PACKAGE_UPDATE_CHECK: 'true',
      },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
    });
    // Exit 1 means failed checks, which the tests below judge; anything else is checkov itself failing.
    if (run.status !== 0 && run.status !== 1) throw new Error(`checkov failed (exit ${run.status}, ${run.error?.message ?? 'no error'}):\n${run.stderr}`);
    const parsed = JSON.parse(run.stdout);
    // One report per framework that found something to check, or the bare summary when none did.
    const report = (Array.isArray(parsed) ? parsed : [parsed]).find((entry) => entry.check_type === 'cloudformation');
    if (!report) throw new Error(`checkov found no CloudFormation template in template.json:\n${run.stdout}`);
    type Reported = { check_id: string; resource: string; check_name: string };
    const results = (list: Reported[]): Result[] =>
      list.map(({ check_id, resource, check_name }) => {
        // "<Type>.<logical id>": a type has no dot, a logical id is alphanumeric.
        const dot = resource.indexOf('.');
        return { check: check_id, type: resource.slice(0, dot), resource: resource.slice(dot + 1), name: check_name };
      });
    return {
      version: report.summary.checkov_version,
      resourceCount: report.summary.resource_count,
      parsingErrors: report.results.parsing_errors,
      passed: results(report.results.passed_checks),
      failed: results(report.results.failed_checks),
      skipped: results(report.results.skipped_checks),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const answers = (acknowledgement: CheckovAcknowledgement) => (result: Result) => {
  const { resource } = acknowledgement;
  const matches = typeof resource === 'string' ? result.resource === resource : new RegExp(`^(?:${resource.source})$`).test(result.resource);
  return result.check === acknowledgement.check && matches;
};

describe('checkov over the synthesized template', () => {
  let template: Synthesized['json'];
  let report: Scan;

  beforeAll(() => {
    const checkov = installedCheckov();
    // With the optional parts on (idle expiry, alarms), so every resource the stack can hold is checked.
    template = synthesize({ [CONTEXT.idleExpiryDays]: 14, [CONTEXT.alarms]: true }).json;
    report = scan(checkov, template);

    const acknowledged = report.failed.filter((result) => CHECKOV_ACKNOWLEDGEMENTS.some((acknowledgement) => answers(acknowledgement)(result)));
    console.info(
      `checkov ${report.version}: ${report.resourceCount} resources, ${report.passed.length} passed, ${report.failed.length} failed, ` +
        `${report.skipped.length} skipped; acknowledged ${acknowledged.length} failed with ${CHECKOV_ACKNOWLEDGEMENTS.length} acknowledgements`,
    );
  }, 180_000);

  it('reads every resource of the template', () => {
    // prepare
    const resources = Object.keys(template.Resources).length;

    // act
    const { parsingErrors, resourceCount, passed } = report;

    // assess
    expect(parsingErrors).toEqual([]);
    expect(resourceCount).toBe(resources);
    expect(passed.length).toBeGreaterThan(0);
  });

  it('fails no check that is not acknowledged', () => {
    // prepare
    const acknowledgements = CHECKOV_ACKNOWLEDGEMENTS;

    // act
    const unacknowledged = report.failed.filter((result) => !acknowledgements.some((acknowledgement) => answers(acknowledgement)(result)));

    // assess
    expect(unacknowledged).toEqual([]);
  });

  it('keeps no acknowledgement that answers no failed check, nor one without a reason', () => {
    // prepare
    const acknowledgements = CHECKOV_ACKNOWLEDGEMENTS;

    // act
    const stale = acknowledgements.filter((acknowledgement) => !report.failed.some(answers(acknowledgement)));
    const unexplained = acknowledgements.filter((acknowledgement) => acknowledgement.reason.length < 60);

    // assess
    expect(stale.map(({ check, resource }) => ({ check, resource: String(resource) }))).toEqual([]);
    expect(unexplained).toEqual([]);
  });

  it('lets the template suppress no check: every acknowledgement lives in linter-acknowledgements.ts', () => {
    // prepare
    const { skipped } = report;

    // act
    // checkov skips a check that a resource's Metadata (checkov.skip) suppresses, unseen by the tests above.
    const suppressed = skipped.map(({ check, resource }) => `${check} on ${resource}`);

    // assess
    expect(suppressed).toEqual([]);
  });
});
