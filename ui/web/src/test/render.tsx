import { render } from '@testing-library/react';
import { MemoryRouter } from 'react-router';
import { AppRoutes } from '../App';
import { ConnectionProvider } from '../connection';
import { SettingsProvider } from '../settings';

/** The whole app at `path`, as the browser would show it; /readyz polling only on request. */
export function renderApp(path: string, { pollReady = false }: { pollReady?: boolean } = {}) {
  return render(
    <SettingsProvider>
      <ConnectionProvider pollReady={pollReady}>
        <MemoryRouter initialEntries={[path]}>
          <AppRoutes />
        </MemoryRouter>
      </ConnectionProvider>
    </SettingsProvider>,
  );
}

/** A streaming body the test writes to as it goes. */
export function controlledStream() {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  return {
    response: () => new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }),
    write: (text: string) => controller.enqueue(encoder.encode(text)),
    close: () => controller.close(),
  };
}
