// Parse an AsyncAPI document with the official parser; print every diagnostic as JSON lines and
// exit 1 when any is an error (severity 0) or a warning (severity 1). Infos (2) and hints (3)
// are printed too: the test suite fails on them as well.
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';

const { document, diagnostics } = await new Parser().parse(readFileSync(process.argv[2], 'utf8'));
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
process.exit(document && !diagnostics.some((d) => d.severity <= 1) ? 0 : 1);
