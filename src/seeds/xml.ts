/**
 * One streaming, namespace-aware XML pass over a whole seed file (SEEDS.md "Integrity"):
 * comments, CDATA sections and processing instructions are never elements, so a KeyPackage
 * inside a comment is not a token; a malformed document is refused at its line and column in
 * time linear in its size; a DOCTYPE (and with it every entity declaration) is refused.
 *
 * The document is decoded as XML says: a byte-order mark (UTF-8, UTF-16 LE/BE), else the
 * first bytes' pattern, else the XML declaration's `encoding`, else UTF-8. Each child of the
 * root is handed over as a small tree once it closes, then dropped: memory holds one
 * KeyPackage at a time, not the document.
 */
import { TextDecoder } from 'node:util';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { SeedFileError } from './seed-file-error.js';

export interface XmlElement {
  /** The local name (any prefix dropped). */
  readonly name: string;
  /** The namespace URI ('' for none). */
  readonly ns: string;
  /** Attribute values by local name. */
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: XmlElement[];
  /** The element's own character data (text and CDATA), untrimmed. */
  text: string;
  /** Where the element starts, for messages. */
  readonly line: number;
}

export interface XmlHandlers {
  /** The root element opened (its attributes; its children come one by one). */
  root(element: XmlElement): void;
  /** A child of the root has closed, with its whole subtree. */
  child(element: XmlElement): void;
}

/** Bytes fed to the parser at a time. */
const CHUNK_BYTES = 1024 * 1024;
/** No value in a seed file comes near this: a larger one is not a seed file. */
const MAX_TEXT_CHARS = 1024 * 1024;
/** Nesting deeper than any PSKC document needs. */
const MAX_DEPTH = 64;
/** Elements in one child of the root (a KeyPackage has a few dozen): a file past this is not a seed file, and would exhaust memory. */
const MAX_ELEMENTS_PER_CHILD = 10_000;

/** The encoding a document's first bytes announce (XML 1.0 appendix F), as a TextDecoder label. */
export function xmlEncoding(head: Buffer): { label: string; declared?: string } {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return { label: 'utf-8' };
  if (head[0] === 0xff && head[1] === 0xfe) return { label: 'utf-16le' };
  if (head[0] === 0xfe && head[1] === 0xff) return { label: 'utf-16be' };
  if (head[0] === 0x3c && head[1] === 0x00) return { label: 'utf-16le' };
  if (head[0] === 0x00 && head[1] === 0x3c) return { label: 'utf-16be' };
  const declaration = /^\s*<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']/.exec(head.subarray(0, 512).toString('latin1'));
  if (!declaration) return { label: 'utf-8' };
  const declared = declaration[1]!;
  // A UTF-16 declaration in a single-byte file contradicts the bytes: they decide (XML F.1).
  return { label: /^utf-?16/i.test(declared) ? 'utf-8' : declared.toLowerCase(), declared };
}

/** Whether the first bytes of a file are XML markup (in whatever encoding): a seed file's first test. */
export function looksLikeXml(head: Buffer): boolean {
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(xmlEncoding(head).label);
  } catch {
    return false;
  }
  return decoder.decode(head).replace(/^\uFEFF/, '').trimStart().startsWith('<');
}

/**
 * Reads the whole document, calling `handlers` as it goes; throws a SeedFileError (naming the
 * line and column) for a document that is not well-formed XML.
 */
export function readXml(file: string, input: string | Buffer, handlers: XmlHandlers): void {
  const parser = new SaxesParser({ xmlns: true, position: true });
  const stack: XmlElement[] = [];
  let rootSeen = false;
  let inChild = 0;
  const where = (): string => `line ${parser.line}, column ${parser.column}`;
  const refuse = (problem: string): never => {
    throw new SeedFileError(file, problem);
  };
  parser.on('error', (error) => {
    const message = error.message.replace(/^[^:]*:\d+:\d+: /, '').replace(/^\d+:\d+: /, '');
    refuse(`is not well-formed XML at ${where()}: ${message.slice(0, 160)}`);
  });
  parser.on('doctype', () => refuse(`declares a DOCTYPE or entities (${where()}), which a seed file never needs and through which XML files attack readers: refused unread (ask the vendor for a plain PSKC file)`));
  parser.on('opentag', (tag: SaxesTagNS) => {
    if (stack.length >= MAX_DEPTH) refuse(`nests elements more than ${MAX_DEPTH} deep (${where()}): not a seed file`);
    const attrs = new Map<string, string>();
    for (const a of Object.values(tag.attributes)) if (a.prefix !== 'xmlns' && a.name !== 'xmlns') attrs.set(a.local, a.value);
    const element: XmlElement = { name: tag.local, ns: tag.uri, attrs, children: [], text: '', line: parser.line };
    if (stack.length === 0) {
      rootSeen = true;
      handlers.root(element);
    } else if (stack.length === 1) inChild = 1;
    else {
      if (++inChild > MAX_ELEMENTS_PER_CHILD) refuse(`holds more than ${MAX_ELEMENTS_PER_CHILD.toLocaleString('en')} elements in one <${stack[1]!.name}> (line ${stack[1]!.line}): not a seed file`);
      stack[stack.length - 1]!.children.push(element);
    }
    stack.push(element);
  });
  parser.on('closetag', () => {
    const element = stack.pop();
    if (element && stack.length === 1) handlers.child(element);
  });
  const onText = (text: string): void => {
    const current = stack[stack.length - 1];
    if (!current || stack.length < 2) return;
    if (current.text.length + text.length > MAX_TEXT_CHARS) refuse(`holds a value of more than ${MAX_TEXT_CHARS} characters in <${current.name}> (line ${current.line}): not a seed file`);
    current.text += text;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);

  if (typeof input === 'string') {
    for (let i = 0; i < input.length; i += CHUNK_BYTES) parser.write(input.slice(i, i + CHUNK_BYTES));
  } else {
    const { label, declared } = xmlEncoding(input);
    let decoder: TextDecoder;
    try {
      decoder = new TextDecoder(label, { fatal: true });
    } catch {
      refuse(`declares the encoding ${JSON.stringify(declared ?? label)}, which this reader does not know: save it as UTF-8`);
    }
    try {
      for (let i = 0; i < input.length; i += CHUNK_BYTES) parser.write(decoder!.decode(input.subarray(i, i + CHUNK_BYTES), { stream: true }));
      parser.write(decoder!.decode());
    } catch (error) {
      if (error instanceof SeedFileError) throw error;
      refuse(`is not valid ${decoder!.encoding.toUpperCase()} text (near ${where()}): save it again in the encoding it declares`);
    }
  }
  if (stack.length > 0) {
    refuse(`is cut short (no closing </${stack[0]!.name}>, line ${parser.line}): a log saved while it was still being written? Get the complete file`);
  }
  parser.close();
  if (!rootSeen) refuse('holds no XML element: not a PSKC seed file');
}

/** The first child of `element` with this local name. */
export const child = (element: XmlElement | undefined, name: string): XmlElement | undefined => element?.children.find((c) => c.name === name);

/** Every child of `element` with this local name. */
export const children = (element: XmlElement | undefined, name: string): XmlElement[] => element?.children.filter((c) => c.name === name) ?? [];

/** The trimmed text of a child, or undefined. */
export const childText = (element: XmlElement | undefined, name: string): string | undefined => {
  const c = child(element, name);
  return c === undefined ? undefined : c.text.trim();
};
