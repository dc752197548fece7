/**
 * One L1 throughput measurement in a process of its own (see runL1Throughput): argv is the
 * contender's index, the capacity, operations per round, rounds and seed; prints the row as JSON.
 */
import { measureContender } from './l1-throughput.js';

const [index, capacity, ops, rounds, seed] = process.argv.slice(2).map(Number);
const row = await measureContender(index!, capacity!, { ops: ops!, rounds: rounds!, seed: seed! });
process.stdout.write(`${JSON.stringify(row)}\n`);
