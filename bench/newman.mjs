// The comparison the issue asks for when newman is installed: a Postman collection run over the
// shipment CSV as a data file, one request at a time, no retries — what operators do today.
// The token is fetched once, by a collection-level pre-request script, as such collections do.
// Not part of the product.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function newmanVersion() {
  const probe = spawnSync('newman', ['--version'], { encoding: 'utf8' });
  return probe.status === 0 ? probe.stdout.trim() : undefined;
}

function collection() {
  const tokenScript = [
    "if (!pm.collectionVariables.get('token')) {",
    '  pm.sendRequest({',
    "    url: pm.environment.get('authUrl') + '/' + pm.environment.get('envId') + '/as/token',",
    "    method: 'POST',",
    "    header: { Authorization: 'Basic ' + btoa(pm.environment.get('clientId') + ':' + pm.environment.get('clientSecret')), 'Content-Type': 'application/x-www-form-urlencoded' },",
    "    body: { mode: 'raw', raw: 'grant_type=client_credentials' },",
    "  }, (err, res) => { if (!err) pm.collectionVariables.set('token', res.json().access_token); });",
    '}',
  ];
  return {
    info: { name: 'OATH token assignment (one request per row)', schema: 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json' },
    event: [{ listen: 'prerequest', script: { type: 'text/javascript', exec: tokenScript } }],
    variable: [{ key: 'token', value: '' }],
    item: [
      {
        name: 'Create OATH_TOKEN device',
        request: {
          method: 'POST',
          header: [
            { key: 'Authorization', value: 'Bearer {{token}}' },
            { key: 'Content-Type', value: 'application/json' },
          ],
          url: '{{apiUrl}}/environments/{{envId}}/users/{{userID}}/devices',
          body: { mode: 'raw', raw: '{"type":"OATH_TOKEN","serialNumber":"{{serialNumber}}"}' },
        },
      },
    ],
  };
}

/** Runs newman over the CSV against the sandbox; resolves with wall time and exit code. */
export async function newmanRun({ workDir, csvPath, apiUrl, authUrl, environmentId, clientId, clientSecret }) {
  const collectionPath = join(workDir, 'oath-bulk.postman_collection.json');
  const environmentPath = join(workDir, 'sandbox.postman_environment.json');
  writeFileSync(collectionPath, JSON.stringify(collection()));
  const values = { apiUrl, authUrl, envId: environmentId, clientId, clientSecret };
  writeFileSync(environmentPath, JSON.stringify({ name: 'sandbox', values: Object.entries(values).map(([key, value]) => ({ key, value, enabled: true })) }));
  const started = performance.now();
  const child = spawn('newman', ['run', collectionPath, '-e', environmentPath, '-d', csvPath, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise((resolve) => child.once('exit', resolve));
  return { ms: performance.now() - started, code };
}
