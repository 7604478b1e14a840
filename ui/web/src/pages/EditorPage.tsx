import { useCallback, useDeferredValue, useEffect, useMemo, useRef, useState } from 'react';
import { Link, useLocation, useNavigate, useParams } from 'react-router';
import { ApiError, api, describeError, type Problem, type StoredWorkflow } from '../api';
import { DagView } from '../components/DagView';
import { workflowPath } from '../components/ExecutionTable';
import { ErrorBox, Loading, forbiddenHint } from '../components/Feedback';
import { YamlEditor, type LineProblem, type YamlEditorHandle } from '../components/YamlEditor';
import { lineOf, previewSpec } from '../lib/spec';
import { specYaml } from '../lib/specYaml';

/** What a new workflow starts from: the smallest valid workflow, to be edited. */
export const NEW_WORKFLOW = `# A workflow: its tasks, their dependencies, and an optional schedule.
id: my-workflow
# schedule: "0 6 * * *"
tasks:
  - id: hello
    type: shell
    command: ["echo", "hello"]
`;

/** Handed from a new workflow's first save to its own editor URL, so nothing is fetched again. */
interface Handoff {
  text: string;
  stored: StoredWorkflow;
}

export function EditorPage() {
  const { id } = useParams();
  const location = useLocation();
  const handoff = (location.state as Handoff | null)?.stored?.id === id ? (location.state as Handoff) : null;
  const [loaded, setLoaded] = useState<{ id: string | undefined; text: string } | null>(
    id ? null : { id, text: NEW_WORKFLOW },
  );
  const [loadError, setLoadError] = useState<unknown>(null);

  useEffect(() => {
    if (!id) {
      setLoaded({ id, text: NEW_WORKFLOW });
      return;
    }
    if (handoff) {
      setLoaded({ id, text: handoff.text });
      return;
    }
    const controller = new AbortController();
    setLoaded(null);
    setLoadError(null);
    api
      .workflow(id, controller.signal)
      .then((w) => setLoaded({ id, text: w.spec ? specYaml(w.spec) : `id: ${id}\ntasks: []\n` }))
      .catch((e: unknown) => {
        if (!controller.signal.aborted) setLoadError(e);
      });
    return () => controller.abort();
    // The handoff only matters when the id changes.
  }, [id]);

  if (loadError)
    return (
      <div className="page">
        <ErrorBox error={loadError} what="workflow" />
      </div>
    );
  if (!loaded || loaded.id !== id)
    return (
      <div className="page">
        <Loading what="workflow" />
      </div>
    );
  return (
    <Editor
      key={id ?? 'new'}
      workflowId={id}
      initial={loaded.text}
      initialOutcome={handoff ? { kind: 'stored', stored: handoff.stored } : null}
    />
  );
}

type Outcome =
  | { kind: 'stored'; stored: StoredWorkflow }
  | { kind: 'invalid'; problems: Problem[] }
  | { kind: 'failed'; message: string };

function Editor({
  workflowId,
  initial,
  initialOutcome,
}: {
  workflowId: string | undefined;
  initial: string;
  initialOutcome: Outcome | null;
}) {
  const navigate = useNavigate();
  const [text, setText] = useState(initial);
  const [saving, setSaving] = useState(false);
  const [outcome, setOutcome] = useState<Outcome | null>(initialOutcome);
  const [savedText, setSavedText] = useState(initial);
  const editor = useRef<YamlEditorHandle>(null);
  const deferred = useDeferredValue(text);
  const preview = useMemo(() => previewSpec(deferred), [deferred]);
  const dirty = text !== savedText;
  // A task picked on the preview opens its entry in the text.
  const goToTask = useCallback(
    (taskId: string) => {
      const line = preview.tasks.find((t) => t.id === taskId)?.line;
      if (line != null) editor.current?.goToLine(line);
    },
    [preview],
  );

  // Server problems, with the line each path names in the text that was sent.
  const serverProblems = useMemo(() => {
    if (outcome?.kind !== 'invalid') return [];
    return outcome.problems.map((p) => ({ ...p, line: lineOf(text, p.path) }));
    // Lines are computed for the text as saved; later edits move with CodeMirror's own mapping.
  }, [outcome]);
  const problemsForEditor: LineProblem[] = useMemo(
    () => serverProblems.map((p) => ({ line: p.line, message: `${p.path}: ${p.message}` })),
    [serverProblems],
  );

  const save = useCallback(async () => {
    if (saving) return;
    setSaving(true);
    setOutcome(null);
    const sent = text;
    try {
      const stored = await api.putWorkflowYaml(sent);
      setSavedText(sent);
      setOutcome({ kind: 'stored', stored });
      if (workflowId !== stored.id) {
        const state: Handoff = { text: sent, stored };
        navigate(`/editor/${encodeURIComponent(stored.id)}`, { replace: true, state });
      }
    } catch (e) {
      if (e instanceof ApiError && e.problems.length > 0) setOutcome({ kind: 'invalid', problems: e.problems });
      else if (e instanceof ApiError && e.status === 403) setOutcome({ kind: 'failed', message: forbiddenHint(e) });
      else setOutcome({ kind: 'failed', message: describeError(e) });
    } finally {
      setSaving(false);
    }
  }, [saving, text, workflowId, navigate]);

  useEffect(() => {
    if (!dirty) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [dirty]);

  return (
    <div className="page page-wide">
      <div className="page-head">
        <div>
          <p className="crumbs">
            {workflowId ? (
              <>
                <Link to={workflowPath(workflowId)}>{workflowId}</Link> / editor
              </>
            ) : (
              'New workflow'
            )}
          </p>
          <h1>{workflowId ? `Edit ${workflowId}` : 'New workflow'}</h1>
        </div>
        <div className="head-actions">
          <span className="muted small-print" role="status">
            {dirty ? 'Unsaved changes' : workflowId ? 'Saved' : 'Not created yet'}
          </span>
          <button
            type="button"
            className="primary"
            onClick={() => void save()}
            disabled={saving}
            title="Ctrl+S / ⌘S in the editor"
          >
            {saving ? 'Saving…' : workflowId ? 'Save new version' : 'Create workflow'}
          </button>
        </div>
      </div>

      {outcome?.kind === 'stored' && (
        <p className="ok-box" role="status">
          Stored <Link to={workflowPath(outcome.stored.id)}>{outcome.stored.id}</Link> version {outcome.stored.version}.
        </p>
      )}
      {outcome?.kind === 'failed' && (
        <p className="error-box" role="alert">
          Not saved: {outcome.message}
        </p>
      )}
      {outcome?.kind === 'invalid' && (
        <div className="error-box" role="alert">
          {/* The node's message repeats a lone problem word for word: count them instead. */}
          <strong>
            Not saved: {serverProblems.length === 1 ? '1 problem' : `${serverProblems.length} problems`} in this
            workflow.
          </strong>
          <ul className="problems">
            {serverProblems.map((p, i) => (
              <li key={i}>
                {p.line !== null ? (
                  <button type="button" className="link" onClick={() => editor.current?.goToLine(p.line!)}>
                    line {p.line}
                  </button>
                ) : (
                  <span className="muted">no line</span>
                )}{' '}
                <code>{p.path}</code>: {p.message}
              </li>
            ))}
          </ul>
        </div>
      )}

      <div className="editor-split">
        <section className="editor-pane" aria-label="Workflow YAML">
          <YamlEditor
            ref={editor}
            value={text}
            onChange={setText}
            onSave={() => void save()}
            problems={problemsForEditor}
            label="Workflow YAML"
          />
        </section>
        <section className="preview-pane" aria-labelledby="preview-title">
          <h2 id="preview-title">Preview{preview.id ? `: ${preview.id}` : ''}</h2>
          {preview.problems.length > 0 && (
            <ul className="problems">
              {preview.problems.map((p, i) => (
                <li key={i}>
                  {p.line !== null && (
                    <button type="button" className="link" onClick={() => editor.current?.goToLine(p.line!)}>
                      line {p.line}
                    </button>
                  )}{' '}
                  {p.message}
                </li>
              ))}
            </ul>
          )}
          <DagView tasks={preview.tasks} onSelect={goToTask} label="Preview of the task graph" height="420px" />
          <p className="muted small-print">
            Drawn from the text as you type; the node checks everything else when you save.
          </p>
        </section>
      </div>
    </div>
  );
}
