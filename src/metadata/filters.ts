/**
 * List filters in containerd's syntax, so `layerpool images ls 'labels."env"==prod'`
 * means what it means to `ctr`:
 *
 *   filter    := selector ("," selector)*      all selectors must match (AND)
 *   selector  := fieldpath [operator value]    no operator: the field is present
 *   fieldpath := field ("." field)*            e.g. name, target.digest, labels."a.b/c"
 *   operator  := "==" | "!=" | "~="            ~= is a regular expression match
 *   value     := quoted | bare                 quoted: "..." (Go string escapes), or /regex/
 *
 * Several filter strings are alternatives (OR); no filter matches everything.
 */
import { InvalidArgumentError } from '../errors.js';

/** Returns the value at a field path, or undefined when the object has no such field. */
export type FieldAdaptor = (fieldpath: readonly string[]) => string | undefined;

export type Filter = (adaptor: FieldAdaptor) => boolean;

type Operator = '==' | '!=' | '~=';

interface Selector {
  fieldpath: string[];
  operator?: Operator;
  value?: string;
  regexp?: RegExp;
}

class Scanner {
  private pos = 0;
  constructor(private readonly input: string) {}

  get done(): boolean {
    this.skipSpace();
    return this.pos >= this.input.length;
  }

  peek(): string {
    this.skipSpace();
    return this.input[this.pos] ?? '';
  }

  fail(message: string): never {
    throw new InvalidArgumentError(`invalid filter ${JSON.stringify(this.input)} at ${this.pos}: ${message}`);
  }

  expect(char: string): void {
    if (this.peek() !== char) this.fail(`expected ${JSON.stringify(char)}`);
    this.pos += 1;
  }

  operator(): Operator | undefined {
    this.skipSpace();
    const two = this.input.slice(this.pos, this.pos + 2);
    if (two === '==' || two === '!=' || two === '~=') {
      this.pos += 2;
      return two;
    }
    return undefined;
  }

  field(): string {
    const c = this.peek();
    if (c === '"') return this.quoted('"');
    const match = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(this.input.slice(this.pos));
    if (!match) this.fail('expected a field name');
    this.pos += match[0].length;
    return match[0];
  }

  value(): { text: string; regexp: boolean } {
    const c = this.peek();
    if (c === '"') return { text: this.quoted('"'), regexp: false };
    if (c === '/') return { text: this.quoted('/'), regexp: true };
    const match = /^[^,\s]+/.exec(this.input.slice(this.pos));
    if (!match) this.fail('expected a value');
    this.pos += match[0].length;
    return { text: match[0], regexp: false };
  }

  private quoted(quote: string): string {
    this.pos += 1;
    let out = '';
    while (this.pos < this.input.length) {
      const c = this.input[this.pos] as string;
      this.pos += 1;
      if (c === '\\' && this.pos < this.input.length) {
        const next = this.input[this.pos] as string;
        this.pos += 1;
        if (quote === '"') out += this.escape(next);
        // Inside /regex/ keep escapes other than \/ for the regular expression itself.
        else out += next === quote ? next : `\\${next}`;
      } else if (c === quote) {
        return out;
      } else {
        out += c;
      }
    }
    return this.fail(`unterminated ${quote}`);
  }

  /**
   * One escape of a "quoted" string, with Go string syntax as containerd reads it:
   * \a \b \f \n \r \t \v \\ \" \xhh \uhhhh \Uhhhhhhhh \ooo. Any other escape is an error
   * (a silently dropped backslash would turn `~="v1\.2"` into a different regexp).
   */
  private escape(c: string): string {
    const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"' };
    const known = simple[c];
    if (known !== undefined) return known;
    const digits = c === 'x' ? 2 : c === 'u' ? 4 : c === 'U' ? 8 : /[0-7]/.test(c) ? 3 : 0;
    if (digits === 0) return this.fail(`illegal escape sequence \\${c}`);
    const start = c === 'x' || c === 'u' || c === 'U' ? this.pos : this.pos - 1;
    const text = this.input.slice(start, start + digits);
    const radix = digits === 3 ? 8 : 16;
    if (text.length !== digits || !(radix === 8 ? /^[0-7]+$/ : /^[0-9A-Fa-f]+$/).test(text)) {
      return this.fail(`illegal numeric escape sequence \\${c}${text}`);
    }
    const code = parseInt(text, radix);
    if ((radix === 8 && code > 255) || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return this.fail(`illegal numeric escape sequence \\${c}${text}`);
    }
    this.pos = start + digits;
    return String.fromCodePoint(code);
  }

  private skipSpace(): void {
    while (this.pos < this.input.length && /\s/.test(this.input[this.pos] as string)) this.pos += 1;
  }
}

function parseSelectors(input: string): Selector[] {
  const scanner = new Scanner(input);
  const selectors: Selector[] = [];
  for (;;) {
    const fieldpath = [scanner.field()];
    while (scanner.peek() === '.') {
      scanner.expect('.');
      fieldpath.push(scanner.field());
    }
    const operator = scanner.operator();
    const selector: Selector = { fieldpath };
    if (operator) {
      const { text, regexp } = scanner.value();
      selector.operator = operator;
      selector.value = text;
      if (operator === '~=' || regexp) {
        try {
          selector.regexp = new RegExp(text);
        } catch (err) {
          scanner.fail(`bad regular expression: ${(err as Error).message}`);
        }
      }
    }
    selectors.push(selector);
    if (scanner.done) return selectors;
    scanner.expect(',');
  }
}

function matches(selector: Selector, adaptor: FieldAdaptor): boolean {
  const actual = adaptor(selector.fieldpath);
  switch (selector.operator) {
    case undefined:
      return actual !== undefined;
    case '==':
      return actual === selector.value;
    case '!=':
      return actual !== selector.value;
    case '~=':
      return actual !== undefined && (selector.regexp as RegExp).test(actual);
  }
}

/** Parse filter strings into one predicate; several strings are ORed, no string matches all. */
export function parseFilters(filters: readonly string[] = []): Filter {
  const alternatives = filters.filter((f) => f.trim() !== '').map(parseSelectors);
  if (alternatives.length === 0) return () => true;
  return (adaptor) => alternatives.some((selectors) => selectors.every((s) => matches(s, adaptor)));
}

/** Adaptor helper for the `labels.<key>` part every object shares. */
export function labelField(labels: Record<string, string>, fieldpath: readonly string[]): string | undefined {
  if (fieldpath.length < 2) return undefined;
  // A label key with dots may be written unquoted (labels.a.b): join the rest back.
  const key = fieldpath.slice(1).join('.');
  // Own keys only: `labels.constructor` must not find Object.prototype.constructor.
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}
