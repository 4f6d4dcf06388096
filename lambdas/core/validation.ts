/**
 * zod's findings, rewritten as a ValidationError a teammate can act on: one `errors[]` entry per offending
 * field, each a short phrase that reads after the field's name ("maxVcpus must be at most 64, ...").
 */
import type * as z from 'zod';
import { type FieldError, ValidationError } from './errors';

const ARTICLE = (word: string) => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);

/** zod's own messages start like this; the schemas' custom messages are kept as they are. */
const ZOD_DEFAULT = /^Invalid input/;

function describeExpected(expected: string, root: boolean): string {
  if (root && expected === 'object') return 'must be a JSON object';
  if (expected === 'int') return 'must be a whole number';
  return `must be ${ARTICLE(expected)}`;
}

/** One FieldError per field (and per unknown field); `where` names the root ("body", "query"). */
export function fieldErrorsOf(issues: readonly z.core.$ZodIssue[], where: string, allowed: readonly string[] = []): FieldError[] {
  const errors: FieldError[] = [];
  for (const issue of issues) {
    const field = issue.path.length > 0 ? issue.path.map(String).join('.') : where;
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length > 0 ? `${field}.` : '';
      for (const key of issue.keys) {
        errors.push({
          field: `${prefix}${key}`,
          message: allowed.length > 0 ? `is not accepted here (allowed: ${allowed.join(', ')})` : 'is not accepted here',
        });
      }
      continue;
    }
    if (issue.code === 'invalid_type' && ZOD_DEFAULT.test(issue.message)) {
      const missing = /received undefined$/.test(issue.message);
      errors.push({ field, message: missing ? 'is required' : describeExpected(issue.expected, issue.path.length === 0) });
      continue;
    }
    errors.push({ field, message: issue.message });
  }
  return errors;
}

/** "name must be ...; maxVcpus must be ...": the detail sentence of a validation problem. */
export function summarize(errors: readonly FieldError[]): string {
  return errors.map((error) => `${error.field} ${error.message}`).join('; ');
}

/** Parses `input` with `schema` or throws a ValidationError listing every offending field. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  input: unknown,
  options: { what: string; where: string; allowed?: readonly string[] },
): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors = fieldErrorsOf(result.error.issues, options.where, options.allowed);
  throw new ValidationError(`${options.what} is not valid: ${summarize(errors)}.`, errors);
}
