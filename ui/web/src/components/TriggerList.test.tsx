import { render, screen, within } from '@testing-library/react';
import { MemoryRouter } from 'react-router';
import { describe, expect, it } from 'vitest';
import type { TriggerSpec } from '../api';
import { TriggerList } from './TriggerList';

function renderList(triggers: TriggerSpec[]) {
  render(
    <MemoryRouter>
      <TriggerList workflowId="report" triggers={triggers} />
    </MemoryRouter>,
  );
  return screen.queryAllByRole('listitem').map((item) => item.textContent);
}

describe('TriggerList', () => {
  it('says each trigger in words', () => {
    expect(
      renderList([
        { event: 'order.created', filter: { region: 'eu', 'customer.tier': 2 } },
        { event: 'ping' },
        { workflow: 'extract' },
        { workflow: 'extract', on: 'failed' },
        { workflow: 'cleanup', on: 'finished' },
        { webhook: 'push', auth: 'github', secret: 'gh' },
        { webhook: 'paid', auth: 'stripe', secret: 'stripe-live' },
        { webhook: 'deploy', auth: 'bearer', secret: 'ci' },
      ]),
    ).toEqual([
      'event order.created where region = eu and customer.tier = 2',
      'event ping',
      'after workflow extract succeeded',
      'after workflow extract failed',
      'after workflow cleanup finished (succeeded, failed or cancelled)',
      'webhook push (GitHub signature, secret gh) at POST /api/v1/hooks/report/push',
      'webhook paid (Stripe signature, secret stripe-live) at POST /api/v1/hooks/report/paid',
      'webhook deploy (bearer token, secret ci) at POST /api/v1/hooks/report/deploy',
    ]);
  });

  it('links the upstream workflow of a chained trigger', () => {
    renderList([{ workflow: 'extract', on: 'succeeded' }]);
    const list = screen.getByRole('list', { name: 'Triggers of report' });
    expect(within(list).getByRole('link', { name: 'extract' })).toHaveAttribute('href', '/workflows/extract');
  });

  it('says when nothing but the schedule and people start the workflow', () => {
    expect(renderList([])).toEqual([]);
    expect(screen.getByText('None: no event, workflow or webhook starts it.')).toBeInTheDocument();
  });

  it('shows a trigger it cannot read as it came', () => {
    expect(renderList([{ event: 'a', workflow: 'b' }])).toEqual([
      'a trigger this page cannot read: {"event":"a","workflow":"b"}',
    ]);
  });
});
