import js from '@eslint/js';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'test-artifacts/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      // Prettier wraps code at 120 columns but never splits strings or comments: this keeps those in bounds too.
      'max-len': ['error', { code: 160, ignoreUrls: true, ignoreRegExpLiterals: true }],
      // Fire-and-forget handlers on EventEmitters are deliberate; promises there are caught inside.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
    },
  },
  { files: ['**/*.test.ts', 'test/**/*.ts'], rules: { '@typescript-eslint/no-non-null-assertion': 'off' } },
  // bench/ is measurement code, never shipped: its loops index arrays they sized themselves, and a check per
  // access there would be measured along with the code under test.
  { files: ['bench/**/*.ts'], rules: { '@typescript-eslint/no-non-null-assertion': 'off' } },
  // The W-TinyLFU tier and its sketch index typed arrays at offsets that are in range by construction, on
  // the cache's hot path: a check per access would cost there what the structure exists to save.
  {
    files: ['lib/cache/tinylfu-memory-tier.ts', 'lib/cache/frequency-sketch.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  // The panel's hooks (custom hooks live in .ts files too): every finding fails `npm test`, the advisory ones too.
  {
    files: ['renderer/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: Object.fromEntries(Object.keys(reactHooks.configs.flat.recommended.rules).map((rule) => [rule, 'error'])),
  },
  // Layers: each folder imports only the folders below it, so the hub never carries agent code and the
  // panel never carries Node code. Tests in a folder follow its rule; test/ (integration) may import anything.
  ...layer(
    'protocol',
    ['lib', 'agent', 'server', 'client', 'renderer', 'electron', 'cli', 'bin', 'bench', 'test'],
    'protocol/ imports nothing else of ours: it is the contract every side shares, so it cannot depend on any side.',
  ),
  ...layer(
    'lib',
    ['agent', 'server', 'client', 'renderer', 'electron', 'cli', 'bin', 'bench', 'test'],
    'lib/ may import protocol/ only: it is what agent and hub both use, so it cannot depend on either (or on test helpers).',
  ),
  ...layer(
    'agent',
    ['server', 'client', 'renderer', 'electron', 'cli', 'bin', 'bench', 'test'],
    'agent/ may import lib/ and protocol/ only: code both agent and hub use belongs in lib/, start-up wiring in cli/ or electron/.',
  ),
  ...layer(
    'server',
    ['agent', 'client', 'renderer', 'electron', 'cli', 'bin', 'bench', 'test'],
    'server/ may import lib/ and protocol/ only: code both agent and hub use belongs in lib/.',
  ),
  ...layer(
    'client',
    ['agent', 'server', 'renderer', 'electron', 'cli', 'bin', 'bench', 'test'],
    "client/ (the tunnel's remote end, an API for other programs) may import lib/ and protocol/ only: what it shares with the farm end belongs in lib/tunnel/.",
  ),
  ...layer(
    'renderer',
    ['lib', 'agent', 'server', 'client', 'electron', 'cli', 'bin', 'bench', 'test'],
    'renderer/ may import protocol/ only: the panel runs in a browser and talks to the agent through the agent-host contract.',
  ),
  ...layer(
    'electron',
    ['renderer', 'bin', 'bench', 'test'],
    'electron/ may import agent/, server/, lib/, protocol/ and cli/startup/: the panel is loaded, not imported.',
    [
      {
        regex: '^(\\.\\./)+cli/(?!startup/)',
        message:
          'electron/ may import only cli/startup/ of cli/: that is the one start-up path the CLI and the ' +
          "desktop app share; the commands stay the CLI's own. Start-up code the desktop app needs belongs " +
          'in cli/startup/.',
      },
    ],
  ),
  ...layer(
    'cli',
    ['renderer', 'electron', 'bin', 'bench', 'test'],
    'cli/ may import agent/, server/, lib/ and protocol/: the panel is loaded, not imported. cli/startup/ is the start-up path the desktop app shares.',
  ),
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);

/** One `no-restricted-imports` rule for the sources (tests included) of a top-level folder. */
function layer(folder, forbidden, message, extra = []) {
  return [
    {
      files: [`${folder}/**/*.{ts,tsx}`],
      rules: {
        'no-restricted-imports': [
          'error',
          // Relative paths only: `../agent/x.js` from server/, `../../agent/x.js` from server/sub/.
          { patterns: [{ regex: `^(\\.\\./)+(${forbidden.join('|')})/`, message }, ...extra] },
        ],
      },
    },
  ];
}
