/**
 * A JS array as a PostgreSQL array literal, for a `$n::type[]` parameter. node-postgres builds the
 * same literal by appending to a string and quoting every element with two regex replaces: in the
 * full storm that was ~26 % of every byte a worker allocated (the arrival statement sends 13–29
 * arrays of up to 1,500 elements per chunk). Here an element is quoted only when PostgreSQL needs
 * it, and the literal is one join.
 *
 * Arrays of strings, numbers, booleans and nulls only; anything else (Buffers, Dates, objects,
 * nested arrays) comes back as it was, for node-postgres' own conversion.
 */
export function arrayLiteral(values: readonly unknown[]): string | readonly unknown[] {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value == null) parts[i] = 'NULL';
    else if (typeof value === 'string') parts[i] = UNQUOTED.test(value) && !(value.length === 4 && NULL_WORD.test(value)) ? value : quoted(value);
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') parts[i] = String(value);
    else return values;
  }
  return `{${parts.join(',')}}`;
}

/**
 * What PostgreSQL's array parser reads as itself without quotes: no delimiter, brace, quote,
 * backslash or (leading, trailing, any) whitespace, and not empty. \s is wider than PostgreSQL's
 * whitespace, which only quotes more.
 */
const UNQUOTED = /^[^\s"\\{},]+$/;
/** An unquoted NULL, in any case, is the null value. */
const NULL_WORD = /^null$/i;

function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}
