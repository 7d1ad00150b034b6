// Supporting measurement for docs/BENCHMARKS.md ("Overhead"): CPU per request of the HTTP layer
// alone, in this process, against a minimal HTTP server in a child process over loopback.
// Compares node:http, axios over a minimal adapter, a bare axios instance, and oath-bulk's own
// transport (axios plus its wall-clock timeout, abort wiring and write notification).
// Not part of the product.
//   node bench/transport-cost.mjs [requests]
import { fork } from 'node:child_process';
import http from 'node:http';
import axios from 'axios';
import { createTransport } from '../dist/pingone/http.js';

if (process.argv[2] === '--server') {
  const body = JSON.stringify({ id: 'd0000000-0000-4000-8000-000000000001', type: 'OATH_TOKEN', status: 'ACTIVE', serialNumber: 'X1', createdAt: new Date().toISOString() });
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body));
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  const N = Number(process.argv[2] ?? 20000);
  const child = fork(new URL(import.meta.url).pathname, ['--server']);
  const port = await new Promise((r) => child.once('message', r));
  const url = `http://127.0.0.1:${port}/v1/environments/e/users/u/devices`;
  const headers = { authorization: 'Bearer x', accept: 'application/json', 'content-type': 'application/json', 'x-ping-external-transaction-id': 'oath-bulk-1-x' };
  const body = '{"type":"OATH_TOKEN","serialNumber":"X1"}';
  const agent = new http.Agent({ keepAlive: true, maxSockets: 18 });
  const bare = axios.create({ httpAgent: agent, validateStatus: () => true, responseType: 'text', transformResponse: [(d) => d], maxRedirects: 0, proxy: false });
  const ours = createTransport({ maxSockets: 18, baseUrls: [url] });
  // axios's own request pipeline (config merge, headers, transforms) over a minimal adapter:
  // what is left of axios's cost if its http adapter were replaced.
  const minimalAdapter = (config) => new Promise((resolve, reject) => {
    const req = http.request(config.url, { method: config.method.toUpperCase(), agent, headers: config.headers.toJSON() }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ data: text, status: res.statusCode, statusText: res.statusMessage, headers: res.headers, config, request: req }));
    });
    req.on('error', reject);
    req.end(config.data);
  });
  const thin = axios.create({ adapter: minimalAdapter, validateStatus: () => true, transformResponse: [(d) => d] });
  const variants = {
    'node:http': () => new Promise((resolve, reject) => {
      const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(JSON.parse(text)));
      });
      req.on('error', reject);
      req.end(body);
    }),
    'axios, minimal adapter': () => thin.request({ method: 'POST', url, headers, data: body }),
    'axios': () => bare.request({ method: 'POST', url, headers, data: body, timeout: 30000 }),
    'oath-bulk transport': () => ours({ method: 'POST', url, headers, body, timeoutMs: 30000, onWritten: () => undefined }),
  };
  const rows = [];
  for (const [name, send] of Object.entries(variants)) {
    const runs = [];
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < 1000; i++) await send();
      const u0 = process.cpuUsage();
      let next = 0;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (next++ < N) await send();
      }));
      const u = process.cpuUsage(u0);
      runs.push((u.user + u.system) / N);
    }
    runs.sort((a, b) => a - b);
    rows.push(`| ${name} | ${Math.round(runs[1])} µs | ${runs.map((x) => Math.round(x)).join(' / ')} |`);
  }
  console.log(`CPU per request in the client, ${N} requests × 3, 16 in flight (median, then all three):\n\n| HTTP layer | CPU/request | runs |\n| --- | --- | --- |\n${rows.join('\n')}`);
  child.kill();
}
