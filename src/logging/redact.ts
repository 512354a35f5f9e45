/**
 * Secrets that must never reach a log line: passwords in connection strings (postgres://user:pw@…,
 * also in an error message or a stack), `password=` / `sslpassword=` settings (libpq keywords, URL
 * query parameters), bearer tokens. The logger runs every line through scrubSecrets before it is
 * written; structured fields known to hold secrets are censored by pino's redact paths as well.
 */
export const REDACTED = '[redacted]';

/** Field paths censored in structured log objects (pino `redact`), at the depths config objects are logged. */
export const REDACT_PATHS = [
  'databaseUrl',
  '*.databaseUrl',
  'password',
  '*.password',
  '*.*.password',
  'analystPassword',
  '*.analystPassword',
  '*.*.analystPassword',
  'sasl',
  '*.sasl',
  '*.*.sasl',
  'hmacKey',
  '*.hmacKey',
  '*.*.hmacKey',
  'bearerToken',
  '*.bearerToken',
  '*.*.bearerToken',
  'authorization',
  '*.authorization',
  '*.*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'ssl.key',
  '*.ssl.key',
  'ssl.passphrase',
  '*.ssl.passphrase',
];

// scheme://user:password@ — the password is everything up to the last '@' before the host.
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'\\]*:)([^\s/?#"'\\]*)@/gi;
// password=…, sslpassword=… (libpq conninfo keywords and URL query parameters), also password: …
// and a JSON "…password":"…" (analystPassword too); quotes are kept, so a JSON line stays JSON.
const PASSWORD_SETTING = /((?:ssl)?password"?\s*[=:]\s*)(?!"?\[redacted\])("(?:[^"\\]|\\.)*"|'[^']*'|[^\s&"',;}]+)/gi;
const BEARER = /\b(Bearer\s+)(?!\[redacted\])[A-Za-z0-9._~+/=-]+/g;

/** The text with passwords in URLs, password settings and bearer tokens replaced by [redacted]. */
export function scrubSecrets(text: string): string {
  if (!/:\/\/|password|bearer/i.test(text)) return text;
  return text
    .replace(URL_USERINFO, (_match, head: string, password: string) => (password === '' ? `${head}@` : `${head}${REDACTED}@`))
    .replace(PASSWORD_SETTING, (_match, head: string, value: string) => {
      if (value === 'null') return `${head}${value}`;
      // In a JSON key's value an unquoted token (a number) becomes a string, so the line stays JSON.
      const quote = value[0] === '"' || value[0] === "'" ? value[0] : head.includes('"') ? '"' : '';
      return `${head}${quote}${REDACTED}${quote}`;
    })
    .replace(BEARER, (_match, head: string) => `${head}${REDACTED}`);
}

/**
 * pino redact paths for params the policy marks secret (config `actions.<name>.secretParams`):
 * `params.<name>` at the depths a request or its params are logged.
 */
export function secretParamPaths(names: readonly string[]): string[] {
  return names.flatMap((name) => {
    const key = `[${JSON.stringify(name)}]`;
    return [`params${key}`, `*.params${key}`, `*.*.params${key}`];
  });
}

/**
 * A scrubber for the values of params marked secret wherever their name appears as a setting in
 * free text: `token=…`, `token: …`, a JSON `"token":"…"`, also JSON quoted inside a message
 * (`\"token\":\"…\"`). Matched by name, not by value: the logger does not know the values.
 */
export function secretParamScrubber(names: readonly string[]): (text: string) => string {
  if (names.length === 0) return (text) => text;
  const alternatives = names.map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  // A value is a JSON string, a JSON string escaped inside another string (ending at the first \"),
  // or a bare token up to a delimiter.
  const value = String.raw`"(?:[^"\\]|\\.)*"|\\"(?:(?!\\").)*\\"|[^\s&"',;}\\]+`;
  const pattern = new RegExp(String.raw`((?<![\w-])(?:${alternatives})(?:\\?")?\s*[=:]\s*)(${value})`, 'g');
  return (text) =>
    text.replace(pattern, (_match, head: string, found: string) => {
      const quote = found.startsWith('\\"') ? '\\"' : found.startsWith('"') ? '"' : '';
      return `${head}${quote}${REDACTED}${quote}`;
    });
}

/** A connection string for display: its password (userinfo or query parameter) replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = REDACTED;
    for (const key of [...u.searchParams.keys()]) if (/password/i.test(key)) u.searchParams.set(key, REDACTED);
    return u.toString();
  } catch {
    return scrubSecrets(url);
  }
}
