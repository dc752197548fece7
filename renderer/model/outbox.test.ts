import { describe, expect, it } from 'vitest';
import { sampleOutbox } from '../../protocol/fake-host.fixture.js';
import { fill, fillTone, givenUp } from './outbox.js';

describe('outbox labels', () => {
  it('how full each bound is, in a fraction and in words', () => {
    expect(fill(120, 100_000)).toEqual({ fraction: 0.0012, percent: '0.1%' });
    expect(fill(99_990, 100_000).percent).toBe('100%');
    expect(fill(5, 0)).toEqual({ fraction: 0, percent: '0%' });
    expect(fill(200, 100).fraction).toBe(1);
    expect([fillTone(0.1), fillTone(0.75), fillTone(0.95)]).toEqual(['good', 'warn', 'bad']);
  });

  it('nothing given up is said as such', () => {
    expect(givenUp(sampleOutbox())).toEqual({
      total: 0,
      dropped: 0,
      text: 'None: every accepted message is delivered or still waiting.',
    });
  });

  it('drops per priority and expiries, counted and said', () => {
    const lost = givenUp(sampleOutbox({ dropped: { high: 0, normal: 3, low: 1_250 }, expired: 7 }));
    expect(lost).toEqual({
      total: 1_260,
      dropped: 1_253,
      text: '1,253 dropped because the outbox was full (3 normal, 1,250 low); 7 expired before delivery.',
    });
    expect(givenUp(sampleOutbox({ expired: 2 })).text).toBe('2 expired before delivery.');
  });
});
