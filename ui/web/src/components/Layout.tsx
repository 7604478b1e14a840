import { NavLink, Outlet } from 'react-router';
import { useConnection } from '../connection';
import { Login } from './Login';

const NAV = [
  { to: '/', label: 'Dashboard', end: true },
  { to: '/executions', label: 'Executions', end: false },
  { to: '/events', label: 'Events', end: false },
  { to: '/editor', label: 'Editor', end: false },
  { to: '/cluster', label: 'Cluster', end: false },
  { to: '/settings', label: 'Settings', end: false },
];

export function Layout() {
  const { reachable, notReady, login, session } = useConnection();
  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/" className="brand" aria-label="Link Loom dashboard">
          <span className="brand-mark" aria-hidden="true" />
          Link Loom
        </NavLink>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.to}>
                <NavLink to={item.to} end={item.end}>
                  {item.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      {!reachable && (
        <div className="banner banner-bad" role="alert">
          The Link Loom node cannot be reached. Retrying every few seconds; what you see may be out of date.
        </div>
      )}
      {reachable && notReady && (
        <div className="banner banner-warn" role="status">
          The node is not ready: {notReady}. Reads and changes may fail until the cluster has a leader.
        </div>
      )}
      <main id="main" tabIndex={-1}>
        {login ? <Login reason={login} /> : <Outlet key={session} />}
      </main>
    </div>
  );
}
