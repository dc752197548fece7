/**
 * First SIGINT/SIGTERM runs the graceful path; a second one while it runs exits at once.
 * Nothing else stops the process: the agent only stops on a signal (docs/failure-scenarios.md).
 */
export function onShutdownSignal(
  graceful: (signal: NodeJS.Signals) => Promise<void>,
  forced: (signal: NodeJS.Signals) => void,
): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      forced(signal);
      return;
    }
    stopping = true;
    void graceful(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
