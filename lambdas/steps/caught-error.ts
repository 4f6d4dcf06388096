/**
 * Turns what a Step Functions Catch leaves in `$.error` into a sentence for an environment's statusReason.
 * On AWS the Cause of a failed Lambda task is a JSON string `{"errorType", "errorMessage", "trace"}`; the
 * local executor may give the plain message; a States.* error may have any text or none. Read defensively.
 */
import type { CaughtError } from './step';

const MAX_REASON_LENGTH = 600;

/** Why the workflow stopped, without a final period (callers embed it in their own sentence). */
export function reasonOfCaughtError(error: CaughtError | undefined): string {
  if (!error) return 'an unknown error stopped the workflow';
  const fromCause = messageFromCause(error.Cause);
  const reason = fromCause ?? describeErrorName(error.Error);
  return trimSentence(reason);
}

function messageFromCause(cause: string | undefined): string | undefined {
  const text = cause?.trim();
  if (!text) return undefined;
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as { errorMessage?: unknown; errorType?: unknown; Cause?: unknown };
      if (typeof parsed.errorMessage === 'string' && parsed.errorMessage.trim()) return parsed.errorMessage;
      if (typeof parsed.Cause === 'string') return messageFromCause(parsed.Cause);
      if (typeof parsed.errorType === 'string' && parsed.errorType.trim()) return describeErrorName(parsed.errorType);
    } catch {
      // Not JSON after all: the text itself is the best reason there is.
    }
  }
  return text;
}

function describeErrorName(name: string): string {
  switch (name) {
    case 'States.Timeout':
      return 'a step did not finish in the time allowed';
    case 'States.HeartbeatTimeout':
      return 'a step stopped answering';
    case 'States.Runtime':
      return 'the workflow could not process a step result';
    default:
      return `a step failed with ${name || 'an unnamed error'}`;
  }
}

/** One line, no trailing period, not longer than the registry should keep. */
export function trimSentence(text: string): string {
  let sentence = text.replace(/\s+/g, ' ').trim();
  if (sentence.length > MAX_REASON_LENGTH) sentence = `${sentence.slice(0, MAX_REASON_LENGTH - 1).trimEnd()}…`;
  return sentence.replace(/[.\s]+$/, '');
}
