/** Process exit codes of the `farmlink` command, documented in the README. */
export const ExitCode = {
  OK: 0,
  /** Something failed at run time (a port in use, say). */
  FAILURE: 1,
  /** Bad command line: unknown command or flag. */
  USAGE: 2,
  /**
   * An agent already runs for this data dir (`farmlink agent`; sysexits EX_TEMPFAIL): one agent
   * runs per PC, so no second one was started. The systemd unit restarts on it anyway, so the service's
   * agent takes over once the other has gone.
   */
  ALREADY_RUNNING: 75,
  /** Bad configuration (sysexits EX_CONFIG). */
  CONFIG: 78,
  /** Stopped by a second signal without finishing the graceful path. */
  FORCED: 130,
  /** `farmlink service status`: not installed, or installed but not running (as LSB's and systemctl status' 3). */
  NOT_RUNNING: 3,
  /**
   * `farmlink service`: not possible on this system (not Linux, or systemd not running); `farmlink event`:
   * no agent runs for the data dir, or it cannot be reached (sysexits EX_UNAVAILABLE).
   */
  UNAVAILABLE: 69,
  /** `farmlink event`: bad arguments — a missing name, invalid JSON in --data, an unknown priority (sysexits EX_USAGE). */
  BAD_ARGUMENTS: 64,
  /** `farmlink event`: the agent's outbox refused the events — full, or it cannot write (sysexits EX_TEMPFAIL). */
  OUTBOX_REFUSED: 75,
  /** `farmlink service`: a system unit needs root (sysexits EX_NOPERM). */
  NO_PERMISSION: 77,
} as const;
