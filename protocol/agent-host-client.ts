import {
  AgentHostEvents,
  AgentHostMethods,
  ResultEnvelopeSchema,
  type AgentHostClient,
  type AgentHostEvent,
  type BridgeTransport,
  type ResultEnvelope,
} from './agent-host.js';

/**
 * The typed AgentHost client over any transport. Outputs and events are checked against the
 * schema, so a host of another version shows up as a clear error instead of a broken panel.
 */
export function createAgentHostClient(transport: BridgeTransport): AgentHostClient {
  return {
    async call(method, input) {
      let raw: unknown;
      try {
        raw = await transport.call(method, input);
      } catch (error) {
        return {
          ok: false,
          error: { code: 'TRANSPORT', message: error instanceof Error ? error.message : String(error) },
        };
      }
      const envelope = ResultEnvelopeSchema.safeParse(raw);
      if (!envelope.success)
        return {
          ok: false,
          error: {
            code: 'BAD_RESPONSE',
            message: `The agent answered ${method} with something this panel does not understand`,
          },
        };
      if (!envelope.data.ok) return envelope.data;
      const value = AgentHostMethods[method].output.safeParse(envelope.data.value);
      if (!value.success)
        return {
          ok: false,
          error: {
            code: 'BAD_RESPONSE',
            message: `The agent's answer to ${method} does not match this panel's version`,
          },
        };
      return { ok: true, value: value.data } as ResultEnvelope<never>;
    },
    on(event, listener) {
      const schema = AgentHostEvents[event];
      return transport.subscribe((name, payload) => {
        if (name !== event) return;
        const parsed = schema.safeParse(payload);
        if (parsed.success) (listener as (p: unknown) => void)(parsed.data);
      });
    },
  };
}

export type { AgentHostClient, AgentHostEvent };
