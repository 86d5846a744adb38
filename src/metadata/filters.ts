/**
 * List filters in containerd's syntax, so `layerpool images ls 'labels."env"==prod'`
 * means what it means to `ctr`:
 *
 *   filter    := selector ("," selector)*      all selectors must match (AND)
 *   selector  := fieldpath [operator value]    no operator: the field is present
 *   fieldpath := field ("." field)*            e.g. name, target.digest, labels."a.b/c"
 *   operator  := "==" | "!=" | "~="            ~= is a regular expression match
 *   value     := quoted | bare                 quoted: "..." with \" escapes, or /regex/
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
        // Inside /regex/ keep escapes other than \/ for the regular expression itself.
        out += next === quote || quote === '"' ? next : `\\${next}`;
      } else if (c === quote) {
        return out;
      } else {
        out += c;
      }
    }
    return this.fail(`unterminated ${quote}`);
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
  return labels[fieldpath.slice(1).join('.')];
}
