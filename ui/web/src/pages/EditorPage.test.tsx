import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { FetchMock, apiError, json } from '../test/fetch';
import { renderApp } from '../test/render';

const SPEC = {
  id: 'nightly',
  schedule: '0 6 * * *',
  tasks: [
    { id: 'extract', type: 'http', url: 'http://127.0.0.1:9000/x' },
    { id: 'load', type: 'shell', command: ['true'], depends_on: ['extract', 'nope'] },
  ],
};

describe('EditorPage', () => {
  it('loads a workflow as YAML, saves it, and lists the problems the node found at their lines', async () => {
    let accept = false;
    const mock = new FetchMock()
      .get('/api/v1/workflows/nightly', () => json({ id: 'nightly', version: 2, spec: SPEC }))
      .post('/api/v1/workflows', () =>
        accept
          ? json({ id: 'nightly', version: 3, created_at: '2026-03-01T06:00:00Z', spec: SPEC }, 201)
          : apiError(422, 'invalid_spec', 'the workflow is not valid', {
              problems: [
                { path: 'tasks[1].depends_on[1]', message: 'unknown task `nope`' },
                { path: 'signing_key', message: 'not a key' },
              ],
            }),
      )
      .install();
    const user = userEvent.setup();
    renderApp('/editor/nightly');
    expect(await screen.findByRole('heading', { level: 1, name: 'Edit nightly' })).toBeInTheDocument();

    // The live preview reads the YAML and flags the unknown dependency itself.
    const preview = screen.getByRole('region', { name: /Preview/ });
    await waitFor(() => expect(within(preview).getByText(/which is not a task here/)).toBeInTheDocument());
    expect(within(preview).getByRole('heading')).toHaveTextContent('Preview: nightly');

    await user.click(screen.getByRole('button', { name: 'Save new version' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Not saved: 2 problems in this workflow.');
    const items = within(alert).getAllByRole('listitem');
    expect(items[0]).toHaveTextContent('tasks[1].depends_on[1]: unknown task `nope`');
    // The line button points at the line of the text sent that names `nope`.
    const line = within(items[0]!).getByRole('button', { name: /^line \d+$/ });
    const sent = mock.callsTo('POST', '/api/v1/workflows')[0]!;
    expect(sent.headers.get('Content-Type')).toBe('application/yaml');
    const lines = sent.body!.split('\n');
    const n = Number(line.textContent!.replace('line ', ''));
    expect(lines[n - 1]).toContain('nope');
    expect(items[1]).toHaveTextContent('no line signing_key: not a key');

    accept = true;
    await user.click(screen.getByRole('button', { name: 'Save new version' }));
    const ok = await screen.findByText(/version 3/);
    expect(ok).toHaveTextContent('Stored nightly version 3.');
  });

  it('opens a task picked on the preview at its line in the text', async () => {
    new FetchMock().get('/api/v1/workflows/nightly', () => json({ id: 'nightly', version: 2, spec: SPEC })).install();
    const user = userEvent.setup();
    renderApp('/editor/nightly');
    const preview = await screen.findByRole('region', { name: /Preview/ });
    const load = await within(preview).findByRole('button', { name: 'load shell' });
    load.focus();
    await user.keyboard('{Enter}');
    // The cursor is on the first line of `load`'s entry, in the focused editor.
    const editor = screen.getByRole('textbox', { name: 'Workflow YAML' });
    await waitFor(() => expect(editor).toHaveFocus());
    expect(editor.querySelector('.cm-activeLine')).toHaveTextContent('- id: load');
  });

  it('starts a new workflow from a minimal template and previews it', async () => {
    new FetchMock().install();
    renderApp('/editor');
    expect(await screen.findByRole('heading', { level: 1, name: 'New workflow' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Create workflow' })).toBeInTheDocument();
    await waitFor(() => expect(screen.getByRole('heading', { name: 'Preview: my-workflow' })).toBeInTheDocument());
  });
});
