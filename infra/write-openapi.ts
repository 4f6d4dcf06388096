/**
 * Writes docs/openapi.json, the API's OpenAPI document (lambdas/api/openapi.ts), for the stack's default
 * settings: `tsx infra/write-openapi.ts`. A unit test fails while the file differs from what this writes,
 * so the document in the repository always describes the code next to it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOpenApiDocument, openApiJson } from '../lambdas/api/openapi';

/** Where the document lives, relative to the repository root. */
export const OPENAPI_DOCUMENT = 'docs/openapi.json';

/** The command that rewrites the document. */
export const WRITE_OPENAPI_COMMAND = 'npx tsx infra/write-openapi.ts';

/** The text docs/openapi.json must hold. */
export function openApiDocumentText(): string {
  return openApiJson(buildOpenApiDocument());
}

if (require.main === module) {
  const path = join(__dirname, '..', OPENAPI_DOCUMENT);
  writeFileSync(path, openApiDocumentText());
  console.log(`wrote ${OPENAPI_DOCUMENT}`);
}
