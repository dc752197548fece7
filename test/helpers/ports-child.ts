// Run by ports.test.ts as a separate process (another vitest worker or suite): takes N ports,
// prints them as JSON, and holds them until its stdin closes.
import { freePort } from './ports.js';

const count = Number(process.argv[2] ?? 1);
const ports: number[] = [];
for (let i = 0; i < count; i += 1) ports.push(await freePort());
process.stdout.write(`${JSON.stringify(ports)}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
