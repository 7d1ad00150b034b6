// A sandbox in a process of its own, for measurements that the test process's own work must
// not distort (arrival times are stamped in the sandbox's event loop). Commands on stdin, one
// JSON object a line: {"configure":{…}} changes settings; {"report":true} answers with the
// highest number of arrivals in any one-second window and the request count.
import { PingOneSandbox } from '../../dist/sandbox/server.js';

const sandbox = new PingOneSandbox({});
await sandbox.start();
process.stdout.write(JSON.stringify({ url: sandbox.url, environmentId: sandbox.environmentId, clientId: sandbox.clientId, clientSecret: sandbox.clientSecret }) + '\n');
let buffered = '';
process.stdin.on('data', (data) => {
  buffered += String(data);
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const command = JSON.parse(buffered.slice(0, nl));
    buffered = buffered.slice(nl + 1);
    if (command.configure) sandbox.configure(command.configure);
    if (command.report) process.stdout.write(JSON.stringify({ maxInWindow: sandbox.maxInWindow(1000), requests: sandbox.stats.requests }) + '\n');
  }
});
process.stdin.on('end', () => sandbox.stop().then(() => process.exit(0)));
