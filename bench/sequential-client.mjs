// What a Postman/newman data-file run does: one request at a time, no retries, no pacing.
// The benchmark's baseline; not part of the product.
import { readFileSync } from 'node:fs';

export async function sequentialRun({ csvPath, apiUrl, authUrl, environmentId, clientId, clientSecret }) {
  const started = performance.now();
  const basic = Buffer.from(`${clientId}:${clientSecret}`).toString('base64');
  const tokenAnswer = await fetch(`${authUrl}/${environmentId}/as/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  const { access_token: token } = await tokenAnswer.json();
  const lines = readFileSync(csvPath, 'utf8').trim().split('\n').slice(1);
  let ok = 0;
  for (const line of lines) {
    const [userId, serialNumber] = line.split(',');
    const answer = await fetch(`${apiUrl}/environments/${environmentId}/users/${userId}/devices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'OATH_TOKEN', serialNumber }),
    });
    await answer.arrayBuffer();
    if (answer.status === 201) ok++;
  }
  return { ms: performance.now() - started, ok, rows: lines.length };
}
