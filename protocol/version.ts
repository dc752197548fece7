/** Wire protocol version spoken by this build. Bumped only for incompatible changes. */
export const PROTOCOL_VERSION = 1;

/** Path of the agent endpoint on every hub; http(s) base URLs in the config are mapped onto it. */
export const AGENT_WS_PATH = '/api/v1/pc/ws';
