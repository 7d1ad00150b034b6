/**
 * Seed CSVs: the Microsoft Entra layout (base32, lower case, padded or not), hex files with
 * broken secrets, defaults from the command line, and the spreadsheet damage the assignment
 * file is also checked for. The secrets of the RFC 4226 test token are used throughout.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeSecret, readSeedCsv } from '../../src/seeds/seed-csv.js';
import { tempDir } from '../support/cli.js';

const RFC_HEX = '3132333435363738393031323334353637383930';
const RFC_BASE32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

function file(text: string | Buffer, name = 'seeds.csv'): string {
  const path = join(tempDir(), name);
  writeFileSync(path, text);
  return path;
}

describe('seed CSVs', () => {
  test('the Entra layout is recognised from its header: base32 TOTP, lower case and padding accepted', async () => {
    const path = file(
      [
        'upn,serial number,secret key,time interval,manufacturer,model',
        `ann@example.com,1100000001,${RFC_BASE32},30,Contoso,Hardware Key`,
        `bob@example.com,1100000002,${RFC_BASE32.toLowerCase()},60,Contoso,Hardware Key`,
        `cy@example.com,1100000003,${RFC_BASE32.slice(0, 26)}======,30,Contoso,Hardware Key`,
      ].join('\r\n') + '\r\n',
    );
    const { layout, tokens } = await readSeedCsv(path);
    expect(layout.entra).toBe(true);
    expect(tokens.map((t) => [t.serialNumber, t.type, t.timeStep, t.secret?.hex(), t.manufacturer, t.problem?.code])).toEqual([
      ['1100000001', 'TOTP', 30, RFC_HEX, 'Contoso', undefined],
      ['1100000002', 'TOTP', 60, RFC_HEX, 'Contoso', undefined],
      ['1100000003', 'TOTP', 30, RFC_HEX.slice(0, 32), 'Contoso', undefined],
    ]);
  });

  test('a row with fewer cells than the header is FIELD_COUNT, and none of its cells is read or shown (a seed could have shifted into the serial)', async () => {
    const path = file(['serial,secret,counter', `H1,${RFC_HEX},5`, `${RFC_HEX},7`].join('\n') + '\n');
    const { tokens } = await readSeedCsv(path, { type: 'HOTP' });
    expect(tokens.map((t) => [t.serialNumber, t.problem?.code])).toEqual([['H1', undefined], ['', 'FIELD_COUNT']]);
    expect(JSON.stringify(tokens[1])).not.toContain(RFC_HEX.slice(0, 12));
    expect(tokens[1]!.problem!.message).toMatch(/expected 3 fields as in the header, got 2/);
  });

  test('hex secrets: odd length and non-hex are INVALID without showing the secret; the rest import', async () => {
    const path = file(['serial,secret,counter', `H1,${RFC_HEX},5`, 'H2,31323,', 'H3,zz3132333435363738393031323334353637383930,', `H4,${RFC_HEX.toUpperCase()},`].join('\n') + '\n');
    const { tokens } = await readSeedCsv(path, { type: 'HOTP' });
    expect(tokens.map((t) => [t.serialNumber, t.problem?.code, t.counter])).toEqual([
      ['H1', undefined, 5n],
      ['H2', 'SECRET_INVALID', undefined],
      ['H3', 'SECRET_INVALID', undefined],
      ['H4', undefined, 0n],
    ]);
    expect(tokens[1]!.problem!.message).toMatch(/odd number of hex digits/);
    for (const t of tokens) expect(JSON.stringify(t, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).not.toMatch(/31323|zz3132/i);
  });

  test('the file says nothing of the type: --type fills it in, else the token is INVALID', async () => {
    const path = file(`serial,seed\nT1,${RFC_HEX}\n`);
    expect((await readSeedCsv(path)).tokens[0]!.problem?.code).toBe('TYPE_MISSING');
    const { tokens } = await readSeedCsv(path, { type: 'TOTP', otpLength: 8, timeStep: 60 });
    expect(tokens.map((t) => [t.type, t.otpLength, t.timeStep])).toEqual([['TOTP', 8, 60]]);
  });

  test('columns per token, in the privacyIDEA style; rules as in PSKC; a serial given two hashes is SEED_CONFLICT on both lines', async () => {
    const path = file(['serial;seed;type;otplen;timestep;hash', `P1;${RFC_HEX};totp;6;30;sha256`, `P2;${RFC_HEX};hotp;6;;sha256`, `P3;${RFC_HEX};totp;7;30;`, `P4;${RFC_HEX};totp;6;45;`, `P1;${RFC_HEX};totp;6;30;`].join('\n') + '\n');
    const { tokens } = await readSeedCsv(path);
    expect(tokens.map((t) => [t.serialNumber, t.hashAlgorithm, t.problem?.code])).toEqual([
      ['P1', 'HmacSHA256', 'SEED_CONFLICT'],
      ['P2', 'HmacSHA256', 'HASH_UNSUPPORTED'],
      ['P3', 'HmacSHA1', 'OTP_LENGTH_UNSUPPORTED'],
      ['P4', 'HmacSHA1', 'TIME_STEP_UNSUPPORTED'],
      ['P1', 'HmacSHA1', 'SEED_CONFLICT'],
    ]);
    expect(tokens[0]!.problem!.message).toMatch(/two different token settings .* line 2 and line 6/);
  });

  test('spreadsheet damage: a serial turned into 2.30873E+13 is INVALID with the fix; leading zeros stay; UTF-16 with BOM reads', async () => {
    const text = `serial,secret\n2.30873E+13,${RFC_HEX}\n0012345,${RFC_HEX}\n`;
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const { tokens } = await readSeedCsv(file(utf16), { type: 'HOTP' });
    expect(tokens.map((t) => [t.serialNumber, t.problem?.code])).toEqual([['2.30873E+13', 'SERIAL_INVALID'], ['0012345', undefined]]);
    expect(tokens[0]!.problem!.message).toMatch(/format the column as Text/);
  });

  test('a file without a secret column is refused, naming the line and the fix', async () => {
    await expect(readSeedCsv(file('serial,name\nX1,foo\n'))).rejects.toThrow(/line 1: no secret column .*recognised: serial.*naming the columns serialNumber and secret/);
  });

  test('a file without a header row: the first line is a token, and its secret is never shown', async () => {
    const error = (await readSeedCsv(file(`S1,${RFC_HEX}\nS2,${RFC_HEX}\n`)).then(() => new Error('not refused'), (e: unknown) => e)) as Error;
    expect(error.message).toMatch(/no serial column \(the first line has 2 cells, none a known column name\): add a header row/);
    expect(error.message).not.toMatch(/3132|S1/);
  });

  test.each([
    ['hex', RFC_HEX],
    ['base32', RFC_BASE32],
    ['base64', 'MTIzNDU2Nzg5MDEyMzQ1Njc4OTA='],
  ] as const)('decodes %s', (encoding, text) => {
    expect(decodeSecret(text, encoding)?.toString('hex')).toBe(RFC_HEX);
  });
});
