// Lint gate (STYLE.md habit 10). Syntax-only typescript-eslint rules, so it runs in seconds;
// type errors are tsc's job.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Import specifiers are matched as written, not resolved, so each rule needs the number of `../`
// that leads from a file back up to its tree (src/ or tools/) and to the repository root.
// (no-restricted-imports `group` patterns use gitignore syntax without extglob, so a pattern like
// `../*/!(index).ts` matches nothing; hence regexes.)
const depths = [
  { glob: '*.ts', up: '\\./', root: '\\.\\./' },
  { glob: '*/*.ts', up: '\\.\\./', root: '(?:\\.\\./){2}' },
  { glob: '*/*/*.ts', up: '(?:\\.\\./){2}', root: '(?:\\.\\./){3}' },
  { glob: '*/*/*/*.ts', up: '(?:\\.\\./){3}', root: '(?:\\.\\./){4}' },
];

/** `<up>/<folder>/<anything but index.ts>`: another folder of the same tree, reached past its index.ts. */
const deepImport = (up, exempt) => ({
  regex: `^${up}${exempt ? `(?!${exempt}/)` : ''}[^./][^/]*/(?!index\\.ts$)`,
  caseSensitive: true,
  message: 'Import another folder through its index.ts (export what you need there).',
});

const rules = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

// The product: folders import each other through index.ts (contract/ files are the shared
// contract, open to all), and nothing under tools/ or test/ — the product never depends on
// what surrounds it.
const product = depths.map(({ glob, up, root }) => ({
  files: [`src/${glob}`],
  rules: rules([
    deepImport(up, 'contract'),
    {
      regex: `^${root}(?:tools|test)(?:/|$)`,
      caseSensitive: true,
      message: 'The product must not import the tools or the tests around it (tools/ and test/ import src/, never the reverse).',
    },
  ]),
}));

// The tools: their own folders through index.ts, and the product only through its public entry
// points (src/index.ts or a folder's index.ts).
const tools = depths.map(({ glob, up, root }) => ({
  files: [`tools/${glob}`],
  rules: rules([
    deepImport(up),
    {
      regex: `^${root}src/(?!index\\.ts$)(?![^/]+/index\\.ts$)`,
      caseSensitive: true,
      message: "Tools use the product through src/index.ts or a folder's index.ts (export what you need there).",
    },
  ]),
}));

export default defineConfig(
  { ignores: ['node_modules/', 'dist/', 'reports/', 'coverage/', '.arbiter/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // ~100 `!` where the code knows more than the types (indexing under noUncheckedIndexedAccess,
      // options commander has already required). `recommended` leaves it off; this keeps it off.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  // bin/ is plain JavaScript run by node: its globals.
  { files: ['bin/**/*.js'], languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly' } } },
  ...product,
  ...tools,
);
