/**
 * The example in docs/tunnel.md ("Using the client API"), kept here so that it compiles with the rest
 * of the code (client/example.test.ts checks the two are the same text).
 */
// example:start
import { TunnelClient } from './tunnel-client.js'; // from the farmlink package: client/tunnel-client.js

export async function adbThroughTheTunnel(token: string): Promise<void> {
  const tunnel = new TunnelClient({
    hubs: ['https://hub.example.com', 'https://hub-2.example.com'], // primary, then fallbacks
    token, // farmlink token --client my-backend --agents pc-017
    agentId: 'pc-017',
    service: 'adb',
  });
  tunnel.events.on('farm_unavailable', ({ reason }) => console.warn(`pc-017 away (${reason}); connections wait`));
  tunnel.events.on('resumed', ({ tookMs }) => console.info(`pc-017 back after ${tookMs} ms`));

  // A local port for programs that speak TCP (adb -P 15037 devices) …
  await tunnel.listen({ host: '127.0.0.1', port: 15037 });

  // … or a stream of your own: a Duplex to 127.0.0.1:5037 on pc-017, once the farm has dialled it.
  const stream = await tunnel.openStream();
  stream.end('000chost:version');
  for await (const chunk of stream) console.info(String(chunk));

  await tunnel.close(); // tells the hub, closes the port
}
// example:end
