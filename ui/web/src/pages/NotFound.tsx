import { Link, useLocation } from 'react-router';

export function NotFound() {
  const { pathname } = useLocation();
  return (
    <div className="page">
      <h1>Page not found</h1>
      <p>
        There is no page at <code>{pathname}</code>. <Link to="/">Back to the dashboard</Link>.
      </p>
    </div>
  );
}
