/**
 * The JSON lines a piece of code writes to stdout and stderr: where the Powertools logger writes its log lines
 * (errors and warnings to stderr) and the metrics module its Embedded Metric Format documents, both of
 * which the Lambda runtime sends to CloudWatch Logs.
 */
export async function jsonLinesOf(act: () => Promise<unknown>): Promise<Record<string, any>[]> {
  const chunks: string[] = [];
  const capture = (chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  };
  const writes = [jest.spyOn(process.stdout, 'write').mockImplementation(capture), jest.spyOn(process.stderr, 'write').mockImplementation(capture)];
  try {
    await act();
  } finally {
    for (const write of writes) write.mockRestore();
  }
  return chunks
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, any>);
}

/** The EMF documents among those lines: the ones CloudWatch turns into metrics. */
export const emfDocuments = (lines: Record<string, any>[]) => lines.filter((line) => line._aws?.CloudWatchMetrics);
