import { render, screen } from '@testing-library/react';
import { ApiError, UnreachableError } from '../api';
import { StaleNote } from './Feedback';

describe('StaleNote', () => {
  const updatedAt = Date.now() - 5_000;

  it('says nothing while the data is fresh', () => {
    const { container } = render(<StaleNote error={null} updatedAt={updatedAt} />);
    expect(container).toBeEmptyDOMElement();
  });

  it('only dates the data when the node is away: the banner says why, once', () => {
    render(<StaleNote error={new UnreachableError()} updatedAt={updatedAt} />);
    const note = screen.getByRole('status');
    expect(note).toHaveTextContent(/^As of \d+ s ago$/);
    expect(note).not.toHaveTextContent('cannot be reached');
  });

  it('names any other failure of the refresh', () => {
    render(<StaleNote error={new ApiError(503, 'no_leader', 'no leader yet', {})} updatedAt={updatedAt} />);
    expect(screen.getByRole('status')).toHaveTextContent(/^Showing data from \d+ s ago: .*no leader yet/);
  });
});
