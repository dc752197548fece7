import { LocalEventLog } from './local-event-log.js';

/**
 * A second process writing to an event log, for the test that two processes share one directory:
 * appends seqs FROM..TO of AGENT in batches of BATCH, then prints what its appends reported.
 * Usage: node event-log-writer.fixture.js DIR AGENT FROM TO BATCH
 */
const [dir = '', agent = '', from = '1', to = '1', batch = '1'] = process.argv.slice(2);
const log = LocalEventLog.open(dir);
let appended = 0;
let duplicates = 0;
for (let start = Number(from); start <= Number(to); start += Number(batch)) {
  const seqs: number[] = [];
  for (let seq = start; seq < start + Number(batch) && seq <= Number(to); seq += 1) seqs.push(seq);
  const outcome = await log.append(
    agent,
    seqs.map((seq) => ({ agent_id: agent, seq, name: 'tick', data: { seq, pid: process.pid }, ts: seq })),
  );
  appended += outcome.appended;
  duplicates += outcome.duplicates;
}
await log.close();
process.stdout.write(`${JSON.stringify({ appended, duplicates })}\n`);
