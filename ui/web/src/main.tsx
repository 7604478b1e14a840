import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router';
import { AppRoutes } from './App';
import { ConnectionProvider } from './connection';
import { SettingsProvider, applyTheme, loadSettings } from './settings';
import './styles.css';

// Before the first paint, so a dark theme does not flash light (no inline script: the node's
// CSP allows scripts from its own origin only).
applyTheme(loadSettings().theme);

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <SettingsProvider>
      <ConnectionProvider>
        <BrowserRouter>
          <AppRoutes />
        </BrowserRouter>
      </ConnectionProvider>
    </SettingsProvider>
  </StrictMode>,
);
