/**
 * Conflicts inside one file (SPEC "Input"): rows that give one serial to different users are
 * all invalid; an exact repeat of an earlier pair is invalid (DUPLICATE_ROW). The first pass
 * over the file fills the index, the second asks it about each row.
 *
 * This is the one structure that grows with the file, so it lives outside the JavaScript heap:
 * an open-addressing table in typed arrays, 20 bytes a slot, keyed by a 64-bit hash of the
 * serial and holding a 32-bit hash of the user, the first row and, for a conflict, the row
 * that made it one (about 40 bytes a serial, against ~150 for a Map of strings, and nothing
 * for the garbage collector to walk). Hash
 * collisions are astronomically rare for serials (64 bits); two different users with the same
 * serial and the same 32-bit hash would be reported DUPLICATE_ROW instead of SERIAL_CONFLICT —
 * still refused, never sent twice.
 */
import type { RowProblem } from './validate.js';

const CONFLICT = 0x80000000;

/** cyrb53's two 32-bit lanes: a fast, well-mixed string hash. */
function hash2(text: string, seed = 0): [number, number] {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, h2 >>> 0];
}

export class ConflictIndex {
  private capacity = 1 << 12;
  private keyHi = new Uint32Array(this.capacity);
  private keyLo = new Uint32Array(this.capacity);
  private users = new Uint32Array(this.capacity);
  /** First row with the serial (0 = empty slot), with the CONFLICT bit once another user claims it. */
  private rows = new Uint32Array(this.capacity);
  /** The second row of a conflicting serial: what its first row is told it conflicts with. */
  private second = new Uint32Array(this.capacity);
  private count = 0;

  /** Rows found invalid so far by conflicts and repeats. */
  invalidRows = 0;

  get size(): number {
    return this.count;
  }

  /** Records a valid row; returns the rows that this row shows to be invalid (it, and the first row of a newly conflicting serial). */
  note(row: number, user: string, serial: string): number[] {
    const [hi, lo] = hash2(serial);
    const slot = this.find(hi, lo);
    if (this.rows[slot] === 0) {
      this.keyHi[slot] = hi;
      this.keyLo[slot] = lo;
      this.users[slot] = hash2(user, 7)[0];
      this.rows[slot] = row;
      this.count++;
      if (this.count * 2 > this.capacity) this.grow();
      return [];
    }
    const first = this.rows[slot]!;
    if (first & CONFLICT) {
      this.invalidRows++;
      return [row];
    }
    if (this.users[slot] === hash2(user, 7)[0]) {
      this.invalidRows++;
      return [row];
    }
    this.rows[slot] = (first | CONFLICT) >>> 0;
    this.second[slot] = row;
    this.invalidRows += 2;
    return [first, row];
  }

  /** The row's problem, if the file gives its serial to another user or repeats its pair. `lineOf` names rows as every message does: row N (line L). */
  check(row: number, serial: string, lineOf: (row: number) => number): RowProblem | undefined {
    const [hi, lo] = hash2(serial);
    const slot = this.find(hi, lo);
    const stored = this.rows[slot]!;
    if (stored === 0) return undefined;
    const conflict = (stored & CONFLICT) !== 0;
    const firstRow = stored & ~CONFLICT;
    const where = (r: number): string => `row ${r} (line ${lineOf(r)})`;
    if (conflict) {
      const other = row === firstRow ? this.second[slot]! : firstRow;
      return {
        code: 'SERIAL_CONFLICT',
        message: `serial ${serial} is also given to another user at ${where(other)}: a token goes to one user; correct the rows and run again`,
      };
    }
    if (row !== firstRow) {
      return { code: 'DUPLICATE_ROW', message: `repeats ${where(firstRow)} (same user and serial): delete the repeat` };
    }
    return undefined;
  }

  /** The slot holding the key, or the empty slot where it would go (linear probing). */
  private find(hi: number, lo: number): number {
    const mask = this.capacity - 1;
    let slot = (hi ^ Math.imul(lo, 0x9e3779b1)) & mask;
    while (this.rows[slot] !== 0 && (this.keyHi[slot] !== hi || this.keyLo[slot] !== lo)) slot = (slot + 1) & mask;
    return slot;
  }

  private grow(): void {
    const { keyHi, keyLo, users, rows, second } = this;
    this.capacity *= 2;
    this.keyHi = new Uint32Array(this.capacity);
    this.keyLo = new Uint32Array(this.capacity);
    this.users = new Uint32Array(this.capacity);
    this.rows = new Uint32Array(this.capacity);
    this.second = new Uint32Array(this.capacity);
    for (let i = 0; i < rows.length; i++) {
      if (rows[i] === 0) continue;
      const slot = this.find(keyHi[i]!, keyLo[i]!);
      this.keyHi[slot] = keyHi[i]!;
      this.keyLo[slot] = keyLo[i]!;
      this.users[slot] = users[i]!;
      this.rows[slot] = rows[i]!;
      this.second[slot] = second[i]!;
    }
  }
}
