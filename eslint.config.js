// Lint config. Layer rules (ARCHITECTURE.md) are enforced here, as undici does:
// src/core is pure (no I/O, clock, randomness, process, console); only src/core/crypto
// may import crypto libraries; core never imports adapters, node services or the CLI.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const nodeIo = [
  'node:fs', 'node:fs/promises', 'node:net', 'node:tls', 'node:dgram', 'node:dns', 'node:dns/promises',
  'node:http', 'node:https', 'node:http2', 'node:child_process', 'node:worker_threads',
  'node:timers', 'node:timers/promises', 'node:os', 'node:process', 'node:readline', 'node:cluster',
  'fs', 'net', 'tls', 'dgram', 'dns', 'http', 'https', 'child_process', 'os', 'process', 'timers',
];
const cryptoLibs = ['node:crypto', 'crypto', '@noble/curves', '@noble/hashes', '@noble/ciphers'];
// A catch names the error it expects and rethrows the rest; where any error is acceptable it
// says so: `catch (_ignored) { // why }`.
const bareCatch = {
  selector: 'CatchClause[param=null]',
  message: 'name the caught error and handle only what you expect (rethrow the rest), or write `catch (_ignored)` with a comment saying why any error is acceptable',
};
const coreClock = { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'core has no clock: pass now in' };

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.torlab/**', 'coverage/**'] },
  js.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'bin/*.js', 'scripts/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true, allowRegExp: true }],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unnecessary-condition': ['error', { allowConstantLoopConditions: true }],
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', bareCatch] },
  },
  {
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/crypto/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [...nodeIo, ...cryptoLibs].map((name) => ({ name, message: 'src/core is pure; crypto only via src/core/crypto' })),
        patterns: [
          { group: ['@noble/*', '@noble/**'], message: 'crypto only via src/core/crypto' },
          { group: ['**/adapters/**', '**/node/**', '**/cli/**'], message: 'core must not import outer layers' },
        ],
      }],
      'no-restricted-globals': ['error',
        { name: 'process', message: 'core is pure: pass configuration in' },
        { name: 'Buffer', message: 'core uses Uint8Array' },
        { name: 'setTimeout', message: 'core has no timers: inject a clock' },
        { name: 'setInterval', message: 'core has no timers: inject a clock' },
        { name: 'fetch', message: 'core does no I/O' },
      ],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'core has no clock: pass now in' },
        { object: 'Math', property: 'random', message: 'core has no randomness: pass random bytes in' },
        { object: 'crypto', property: 'getRandomValues', message: 'core has no randomness: pass random bytes in' },
      ],
      'no-restricted-syntax': ['error', coreClock, bareCatch],
    },
  },
  {
    files: ['src/core/crypto/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: nodeIo, patterns: [{ group: ['**/adapters/**', '**/node/**', '**/cli/**'] }] }],
      'no-restricted-properties': ['error',
        { object: 'Math', property: 'random', message: 'no randomness in core' },
        { object: 'Date', property: 'now', message: 'no clock in core' },
      ],
    },
  },
  {
    files: ['src/adapters/**/*.ts', 'src/node/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: cryptoLibs.map((name) => ({ name, message: 'crypto only via src/core/crypto' })), patterns: [{ group: ['**/cli/**'], message: 'inner layers must not import the CLI' }] }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'scripts/**/*.mjs'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-floating-promises': 'off',
      'no-console': 'off',
    },
  },
  {
    files: ['src/cli/**/*.ts', 'bin/**/*.js'],
    rules: {
      'no-console': 'off',
      'no-restricted-imports': ['error', { paths: cryptoLibs.map((name) => ({ name, message: 'crypto only via src/core/crypto; randomness via adapters/system/random.ts' })) }],
    },
  },
  {
    files: ['*.js', 'bin/*.js', 'scripts/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
