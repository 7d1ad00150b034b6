/**
 * A journal disk in memory for unit tests: what was written, what a power cut keeps (the
 * lines covered by the last durable write), and one "process" at a time — a crashed one
 * writes nothing more.
 */
import { RecordingJournal, type RecordSink } from '../../src/engine/journal.js';
import { JournalState } from '../../src/engine/journal-state.js';

export class MemoryDisk {
  lines: string[] = [];
  durableLines = 0;
  private generation = 0;

  /** A journal over what is on the disk, as a new run opens it. */
  open(): RecordingJournal {
    const generation = ++this.generation;
    const state = new JournalState();
    for (const line of this.lines) if (line.trim() !== '') state.apply(JSON.parse(line) as Record<string, unknown>);
    state.closeWindows(Date.now());
    const sink: RecordSink = {
      write: async (text, durable) => {
        if (generation !== this.generation) throw new Error('the process that owned this journal is gone');
        const added = text.split('\n');
        added.pop();
        this.lines.push(...added);
        if (durable) this.durableLines = this.lines.length;
      },
      close: async () => {
        if (generation === this.generation) this.durableLines = this.lines.length;
      },
    };
    return new RecordingJournal(state, sink);
  }

  /** The process dies (kill -9): what it wrote stays; nothing more is written. */
  kill(): void {
    this.generation++;
  }

  /** The machine loses power: only what was synced stays. */
  powerCut(): void {
    this.generation++;
    this.lines = this.lines.slice(0, this.durableLines);
  }

  /** Whether a start for `key` is on disk (durable). */
  durableStart(key: string): boolean {
    return this.lines.slice(0, this.durableLines).some((l) => l.includes('"e":"start"') && (l.includes(`"k":${JSON.stringify(key)}`) || l.includes(`"sn":${JSON.stringify(key)}`)));
  }
}
