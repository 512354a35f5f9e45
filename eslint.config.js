// Lint gate (STYLE.md habit 10). Syntax-only typescript-eslint rules, so it runs in seconds;
// type errors are tsc's job.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Import specifiers are matched as written, not resolved, so the rule needs the number of `../`
// that leads from a file back up to src/. Each rule below flags `<up>/<folder>/<anything but
// index.ts>` for every folder except contract/, whose files are the shared contract.
// (no-restricted-imports `group` patterns use gitignore syntax without extglob, so a pattern like
// `../*/!(index).ts` matches nothing; hence regexes.)
const depths = [
  { files: ['src/*.ts'], up: '\\./' },
  { files: ['src/*/*.ts'], up: '\\.\\./' },
  { files: ['src/*/*/*.ts'], up: '(?:\\.\\./){2}' },
  { files: ['src/*/*/*/*.ts'], up: '(?:\\.\\./){3}' },
];
const domainBoundaries = depths.map(({ files, up }) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            regex: `^${up}(?!contract/)[^./][^/]*/(?!index\\.ts$)`,
            caseSensitive: true,
            message: 'Import another folder through its index.ts (export what you need there).',
          },
        ],
      },
    ],
  },
}));

export default defineConfig(
  { ignores: ['node_modules/', 'reports/', 'coverage/', '.arbiter/'] },
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
  ...domainBoundaries,
);
