import { classify, failureFromBody, type FailureInfo } from '../../src/pingone/errors.js';

function answer(status: number, body: unknown): FailureInfo {
  return failureFromBody(status, body, undefined);
}
const details = (code: string, target?: string, innerError?: object) => ({ id: 'x', code: 'INVALID_DATA', message: 'm', details: [{ code, target, message: 'd', innerError }] });

// Every row of PINGONE.md's error table, and the network failures beside it.
describe('the error classifier', () => {
  test.each([
    ['400 INVALID_DATA / INVALID_VALUE on serialNumber', answer(400, details('INVALID_VALUE', 'serialNumber')), { kind: 'refused', code: 'SERIAL_NOT_FOUND' }],
    ['400 INVALID_DATA / UNIQUENESS_VIOLATION', answer(400, details('UNIQUENESS_VIOLATION', 'serialNumber')), { kind: 'refused', code: 'SERIAL_ALREADY_ASSIGNED' }],
    ['400 REQUEST_FAILED / LIMIT_EXCEEDED (max devices)', answer(400, { code: 'REQUEST_FAILED', details: [{ code: 'LIMIT_EXCEEDED', innerError: { maximumAllowed: 5 } }] }), { kind: 'refused', code: 'MAX_DEVICES_REACHED' }],
    ['400 INVALID_REQUEST / REQUIRED_VALUE', answer(400, { code: 'INVALID_REQUEST', details: [{ code: 'REQUIRED_VALUE', target: 'type' }] }), { kind: 'refused', code: 'REQUEST_REFUSED' }],
    ['401 ACCESS_FAILED / INVALID_TOKEN', answer(401, { code: 'ACCESS_FAILED', details: [{ code: 'INVALID_TOKEN' }] }), { kind: 'refresh' }],
    ['403 ACCESS_FAILED / INSUFFICIENT_PERMISSIONS', answer(403, { code: 'ACCESS_FAILED', details: [{ code: 'INSUFFICIENT_PERMISSIONS' }] }), { kind: 'systemic', code: 'INSUFFICIENT_PERMISSIONS' }],
    ['403 ACCESS_FAILED / LICENSE_EXCEEDED', answer(403, { code: 'ACCESS_FAILED', details: [{ code: 'LICENSE_EXCEEDED' }] }), { kind: 'systemic', code: 'LICENSE_EXCEEDED' }],
    ['404 NOT_FOUND', answer(404, { code: 'NOT_FOUND', message: 'Unable to find user.' }), { kind: 'refused', code: 'USER_NOT_FOUND' }],
    ['408', answer(408, ''), { kind: 'retry', code: 'TIMEOUT', rateLimited: false }],
    ['409', answer(409, { code: 'CONFLICT' }), { kind: 'refused', code: 'CONFLICT' }],
    ['429 REQUEST_LIMITED / LIMIT_EXCEEDED', answer(429, { code: 'REQUEST_LIMITED', details: [{ code: 'LIMIT_EXCEEDED' }] }), { kind: 'retry', code: 'RATE_LIMITED', rateLimited: true }],
    ['429 REQUEST_LIMITED / QUOTA_EXCEEDED', answer(429, { code: 'REQUEST_LIMITED', details: [{ code: 'QUOTA_EXCEEDED', innerError: { retryAfter: 3 } }] }), { kind: 'retry', code: 'RATE_LIMITED', rateLimited: true }],
    ['500 UNEXPECTED_ERROR', answer(500, { code: 'UNEXPECTED_ERROR' }), { kind: 'retry', code: 'SERVER_ERROR', rateLimited: false }],
    ['502 with an HTML page', answer(502, '<html><body>Bad Gateway</body></html>'), { kind: 'retry', code: 'SERVER_ERROR', rateLimited: false }],
    ['503', answer(503, { code: 'UNEXPECTED_ERROR' }), { kind: 'retry', code: 'SERVER_ERROR', rateLimited: false }],
    ['504', answer(504, ''), { kind: 'retry', code: 'SERVER_ERROR', rateLimited: false }],
    ['a 400 whose status may change but code says REQUEST_LIMITED', answer(400, { code: 'REQUEST_LIMITED' }), { kind: 'retry', code: 'RATE_LIMITED', rateLimited: true }],
    ['connection reset', { network: 'ECONNRESET', message: 'reset', maybeSent: true }, { kind: 'retry', code: 'NETWORK_ERROR', rateLimited: false }],
    ['timeout', { network: 'ETIMEDOUT', message: 't', maybeSent: true }, { kind: 'retry', code: 'TIMEOUT', rateLimited: false }],
    ['untrusted certificate', { network: 'SELF_SIGNED_CERT_IN_CHAIN', message: 'c', maybeSent: false }, { kind: 'systemic', code: 'TLS_ERROR' }],
  ])('%s', (_name, failure, verdict) => {
    expect(classify(failure as FailureInfo)).toEqual(verdict);
  });

  test('QUOTA_EXCEEDED innerError.retryAfter is used when the header is missing', () => {
    expect(answer(429, { code: 'REQUEST_LIMITED', details: [{ code: 'QUOTA_EXCEEDED', innerError: { retryAfter: 3 } }] }).retryAfterMs).toBe(3000);
  });

  test('an HTML body becomes a short message, not the page', () => {
    expect(answer(502, '<html><body>Bad Gateway</body></html>').message).toBe('HTTP 502 with an HTML page');
  });
});
