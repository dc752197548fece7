/**
 * Typed errors: a stable `code` for programs and tests, a message for people.
 */
export class FarmlinkError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FarmlinkError';
    this.code = code;
  }
}

/** A configuration problem; `problems` lists every one found, each naming its source and key. */
export class ConfigError extends FarmlinkError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('CONFIG_INVALID', `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Serialisable form of any thrown value. */
export function errorInfo(err: unknown, fallbackCode = 'INTERNAL'): { code: string; message: string } {
  if (err instanceof FarmlinkError) return { code: err.code, message: err.message };
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return { code: typeof code === 'string' ? code : fallbackCode, message: err.message };
  }
  return { code: fallbackCode, message: String(err) };
}
