import { Suspense, lazy } from 'react';
import { Route, Routes } from 'react-router';
import { Layout } from './components/Layout';
import { Loading } from './components/Feedback';
import { ClusterPage } from './pages/ClusterPage';
import { Dashboard } from './pages/Dashboard';
import { EventsPage } from './pages/EventsPage';
import { ExecutionPage } from './pages/ExecutionPage';
import { ExecutionsPage } from './pages/ExecutionsPage';
import { NotFound } from './pages/NotFound';
import { SettingsPage } from './pages/SettingsPage';

// The graph (React Flow) and the editor (CodeMirror) are most of the code; load them on demand.
const WorkflowPage = lazy(() => import('./pages/WorkflowPage').then((m) => ({ default: m.WorkflowPage })));
const EditorPage = lazy(() => import('./pages/EditorPage').then((m) => ({ default: m.EditorPage })));

export function AppRoutes() {
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route index element={<Dashboard />} />
        <Route
          path="workflows/:id"
          element={
            <Suspense fallback={<Loading what="the workflow view" />}>
              <WorkflowPage />
            </Suspense>
          }
        />
        <Route path="executions" element={<ExecutionsPage />} />
        <Route path="executions/:id" element={<ExecutionPage />} />
        <Route path="events" element={<EventsPage />} />
        <Route
          path="editor/:id?"
          element={
            <Suspense fallback={<Loading what="the editor" />}>
              <EditorPage />
            </Suspense>
          }
        />
        <Route path="cluster" element={<ClusterPage />} />
        <Route path="settings" element={<SettingsPage />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}
