/**
 * The job's memory footprint, set before anything else is loaded.
 *
 * What a run keeps alive is small (tens of MB at 100k rows), but by default V8 lets the old
 * generation grow to several times that before a full collection, so a long run's resident
 * size was mostly garbage awaiting collection (288 MB at 100k rows). oath-bulk runs from cron
 * on shared hosts: it collects sooner instead, for a few percent more GC time (measured in
 * docs/BENCHMARKS.md). Only the CLI sets this; the library code does not.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--heap-growing-percent=20');
