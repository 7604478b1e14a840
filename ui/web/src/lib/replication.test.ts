import { behindOf, lagSummary } from './replication';

const replication = (behind: (number | null)[]) => ({
  leader_id: 1,
  last_log_index: 200,
  members: behind.map((b, i) => ({ id: i + 1, matched_index: b === null ? null : 200 - b, behind: b })),
});

describe('lagSummary', () => {
  it('says every member is in step when none lacks an entry', () => {
    expect(lagSummary({ replication: replication([0, 0, 0]) })).toEqual({ text: 'every member in step', tone: 'ok' });
  });

  it('names the member furthest behind', () => {
    expect(lagSummary({ replication: replication([0, 3, 152]) })).toEqual({
      text: 'node 3 is 152 entries behind',
      tone: 'busy',
    });
    // Large figures are grouped the viewer's way (1,520 or 1.520).
    expect(lagSummary({ replication: replication([1520, 0]) }).text).toMatch(/^node 1 is 1\D?520 entries behind$/);
    expect(lagSummary({ replication: replication([0, 1, 0]) }).text).toBe('node 2 is 1 entry behind');
  });

  it('puts a member that never answered the leader first', () => {
    expect(lagSummary({ replication: replication([0, 900, null]) })).toEqual({
      text: 'node 3 has not answered the leader yet',
      tone: 'bad',
    });
  });

  it('says why the figures are missing', () => {
    expect(lagSummary({ replication: null, replication_error: 'no leader' })).toEqual({
      text: 'unknown (no leader)',
      tone: 'idle',
    });
    expect(lagSummary({})).toEqual({ text: 'unknown', tone: 'idle' });
  });
});

describe('behindOf', () => {
  it("gives a member's own figure, or a dash while unknown", () => {
    const cluster = { replication: replication([0, 42, null]) };
    expect(behindOf(cluster, 1)).toBe('0');
    expect(behindOf(cluster, 2)).toBe('42');
    expect(behindOf(cluster, 3)).toBe('–');
    expect(behindOf(cluster, 9)).toBe('–');
    expect(behindOf({ replication: null }, 1)).toBe('–');
  });
});
