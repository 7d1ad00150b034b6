#!/usr/bin/env -S node --
// The "--" stops Node.js from reading our own --env-file flag as its own (nodejs/node#54232):
// Node 20 would otherwise exit with "node: <file>: not found" before oath-bulk could speak.
import './footprint.js';
import { main } from './main.js';

void main(process.argv.slice(2));
