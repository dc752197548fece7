import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FarmlinkError } from '../lib/errors.js';

export class UsageError extends FarmlinkError {
  constructor(message: string) {
    super('USAGE', message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Arguments a command checks itself (values, positionals): answered with one line naming the command,
 * a pointer to its --help, and exit 64 — see `explainBadArguments`.
 */
export class BadArguments extends Error {}

/** parseArgs' message without its advice about `--`, which does not apply to our commands. */
export function parseArgsMessage(error: unknown): string {
  return (error as Error).message.replace(/\. To specify a positional.*$/s, '');
}

/**
 * Runs a command's own argument checks. A BadArguments is written to stderr as
 * `farmlink COMMAND: why` + `Run "farmlink COMMAND --help" for usage.`, and undefined comes back: the
 * command then exits 64 (ExitCode.BAD_ARGUMENTS). Anything else is thrown on.
 */
export function explainBadArguments<T>(command: string, check: () => T): T | undefined {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof BadArguments)) throw error;
    process.stderr.write(`farmlink ${command}: ${error.message}\nRun "farmlink ${command} --help" for usage.\n`);
    return undefined;
  }
}

/**
 * node:util parseArgs, strict, with its errors turned into UsageError naming the command.
 * Negated flags (`--no-panel`, `--no-log-file`) are options of their own, declared and read under
 * their own names; parseArgs' allowNegative would turn them into `panel: false` behind the
 * reader's back and accept `--no-` before any boolean flag, documented or not.
 */
export function parseFlags<T extends Options>(command: string, argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(`farmlink ${command}: ${parseArgsMessage(error)}`);
  }
}

/** A flag's value as a number, or a UsageError naming the flag. */
export function numberFlag(
  name: string,
  value: string | undefined,
  { integer = false, min = 0 } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new UsageError(`--${name}: expected ${integer ? 'a whole number' : 'a number'} ≥ ${min}, got "${value}"`);
  }
  return n;
}

/** Seconds on the command line (fractions allowed) → milliseconds. */
export function secondsFlag(name: string, value: string | undefined): number | undefined {
  const s = numberFlag(name, value);
  return s === undefined ? undefined : Math.round(s * 1000);
}
