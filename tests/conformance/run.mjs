// Runs every GraphQL-over-HTTP server audit of the `graphql-http` package against one URL and
// prints one JSON line per audit: {"id","name","status","reason","httpStatus"}.
// status: ok | error (a MUST failed) | warn (a SHOULD failed) | notice (a MAY failed).
// Used by tests/conformance.rs; by hand: `npm ci && node run.mjs http://127.0.0.1:8080/graphql`.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  process.stderr.write('usage: node run.mjs <graphql endpoint url>\n');
  process.exit(2);
}

// One at a time, so that an audit that throws (a fatal failure) is reported instead of ending the run.
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  let result;
  try {
    result = await audit.fn();
  } catch (error) {
    result = { status: 'error', reason: `the audit threw: ${error?.message ?? error}` };
  }
  const line = {
    id: audit.id,
    name: audit.name,
    status: result.status,
    reason: result.reason ?? null,
    httpStatus: result.response?.status ?? null,
  };
  process.stdout.write(JSON.stringify(line) + '\n');
}
