/**
 * Outcomes of calls, taken as a test needs them.
 */
import { ValidationError } from '../../lambdas/core/errors';

/**
 * A call's outcome, taken at once. A test that starts several calls before awaiting the first must not leave a
 * later one rejected with no handler while it awaits an earlier one: Node reports that rejection as unhandled
 * and jest fails the test with it, or not, depending on which call settles first. `await outcomeOf(call)` is
 * the error the call rejected with, or `{ resolved: value }` (which matches no error a test expects).
 */
export function outcomeOf<T>(call: Promise<T>): Promise<unknown> {
  return call.then(
    (value) => ({ resolved: value }),
    (error: unknown) => error,
  );
}

/** The ValidationError a call throws (fails the test if it throws nothing, or something else). */
export function validationErrorOf(act: () => unknown): ValidationError {
  try {
    act();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}
