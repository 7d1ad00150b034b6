/** A fresh sandbox on loopback for each test of the file: `const box = useSandbox(); box.sandbox…`. */
import { PingOneSandbox } from '../../src/sandbox/server.js';

export function useSandbox(scope: 'each' | 'all' = 'each'): { sandbox: PingOneSandbox } {
  const holder = {} as { sandbox: PingOneSandbox };
  const start = async (): Promise<void> => {
    holder.sandbox = new PingOneSandbox();
    await holder.sandbox.start();
  };
  const stop = async (): Promise<void> => {
    await holder.sandbox.stop();
  };
  if (scope === 'each') {
    beforeEach(start);
    afterEach(stop);
  } else {
    beforeAll(start);
    afterAll(stop);
  }
  return holder;
}
