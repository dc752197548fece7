/** Process exit codes of the `farmlink` command, documented in the README. */
export const ExitCode = {
  OK: 0,
  /** Something failed at run time (a port in use, say). */
  FAILURE: 1,
  /** Bad command line: unknown command or flag. */
  USAGE: 2,
  /**
   * An agent already runs for this data dir (`farmlink agent`; sysexits EX_TEMPFAIL): one agent
   * runs per PC, so no second one was started. A service manager should not restart on it.
   */
  ALREADY_RUNNING: 75,
  /** Bad configuration (sysexits EX_CONFIG). */
  CONFIG: 78,
  /** Stopped by a second signal without finishing the graceful path. */
  FORCED: 130,
} as const;
