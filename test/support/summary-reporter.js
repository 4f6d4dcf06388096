/**
 * Ends every jest run with one plain line, "tests: N passed, N failed, N skipped", that any CI can read
 * without knowing jest's own summary format. Written as the process exits, so it comes after jest's summary.
 */
const { writeSync } = require('node:fs');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests } = results;
    const line = `tests: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests + numTodoTests} skipped\n`;
    process.once('exit', () => writeSync(2, line));
  }
}
module.exports = SummaryReporter;
