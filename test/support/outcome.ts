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
