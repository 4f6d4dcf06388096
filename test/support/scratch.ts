/**
 * Temporary folders of one test file (a synthesized cloud assembly with its bundles is several MiB), removed
 * once the file's tests are done (jest setupFilesAfterEnv: test/support/remove-scratch.ts) or when a script
 * says so, so runs do not pile up in the system's temporary folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const made: string[] = [];

/** A new empty folder under the system's temporary folder, named `mfenv-<purpose>-…`. */
export function scratchDir(purpose: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `mfenv-${purpose}-`));
  made.push(dir);
  return dir;
}

/** Removes every folder scratchDir made so far. */
export function removeScratchDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}
