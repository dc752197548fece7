import { describe, expect, it } from 'vitest';
import { CONNECT_HELP, parseConnectArgs } from './connect-command.js';

const BASE = ['pc-017', 'adb', '--hub', 'http://127.0.0.1:8787', '--listen', '15037'];

describe('farmlink connect arguments', () => {
  it('tries the direct path unless --no-direct is given', () => {
    expect(parseConnectArgs(BASE)).toMatchObject({ direct: true });
    expect(parseConnectArgs([...BASE, '--no-direct'])).toMatchObject({ direct: false });
    expect(CONNECT_HELP).toContain('--no-direct');
  });
});
