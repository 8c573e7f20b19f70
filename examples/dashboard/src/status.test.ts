import { describe, expect, it } from 'vitest';
import { displayOrder, mapStatus } from './status.ts';

describe('mapStatus', () => {
  const cases: [string, string, string, string, boolean][] = [
    // backend, display status, label, tone, in progress
    ['New', 'new', 'New', 'neutral', false],
    ['Enriching', 'enriching', 'Enriching', 'progress', true],
    ['Enriched', 'enriched', 'Enriched', 'progress', true],
    ['Scored', 'scored', 'Scored', 'progress', true],
    ['Vetted', 'vetted', 'Vetted', 'progress', true],
    ['Qualified', 'qualified', 'Qualified', 'good', false],
    ['Disqualified', 'disqualified', 'Disqualified', 'bad', false],
    ['SyncedToCrm', 'synced', 'Synced to CRM', 'good', false],
    ['Failed', 'failed', 'Failed', 'bad', false],
    // other spellings of the same contract
    ['synced_to_crm', 'synced', 'Synced to CRM', 'good', false],
    ['QUALIFIED', 'qualified', 'Qualified', 'good', false],
    ['Rejected', 'disqualified', 'Disqualified', 'bad', false],
    [' new ', 'new', 'New', 'neutral', false],
  ];
  it.each(cases)('%s → %s', (backend, status, label, tone, inProgress) => {
    expect(mapStatus(backend)).toEqual({ status, label, tone, inProgress });
  });

  it('keeps an unknown status as it is', () => {
    expect(mapStatus('OnHold')).toEqual({ status: 'unknown', label: 'OnHold', tone: 'neutral', inProgress: false });
  });

  it('names a missing status', () => {
    expect(mapStatus(undefined).label).toBe('Unknown');
    expect(mapStatus('').status).toBe('unknown');
  });

  it('orders every display status', () => {
    for (const [backend] of cases) expect(displayOrder).toContain(mapStatus(backend).status);
    expect(new Set(displayOrder).size).toBe(displayOrder.length);
  });
});
