// A workflow's tasks drawn as a graph (React Flow, laid out by dagre), coloured by the status
// of each task in one execution when there is one.
//
// Every task is a button: Tab reaches it, Enter, Space and a click select it, and its name says
// the task, its status and its type. What selecting means is the page's (the task's definition on
// the workflow page, its line in the editor). React Flow's own node focus stays off, so a task is
// one tab stop, not two; a task focused outside the view is brought into it.

import { useEffect, useMemo, type FocusEvent } from 'react';
import {
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  useEdgesState,
  useNodesState,
  useStoreApi,
  type Edge,
  type Node,
  type NodeProps,
} from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import type { TaskStatus } from '../api';
import { useElementSize } from '../hooks/useElementSize';
import { fitZoom, layoutDag, type DagTask, type Direction } from '../lib/dag';
import { label, tone } from '../lib/status';

type TaskNodeData = {
  taskId: string;
  kind?: string;
  status?: TaskStatus;
  selected: boolean;
  direction: Direction;
  onSelect: (taskId: string) => void;
};
type TaskNode = Node<TaskNodeData, 'task'>;

function TaskNodeView({ data, positionAbsoluteX, positionAbsoluteY, width = 0, height = 0 }: NodeProps<TaskNode>) {
  const store = useStoreApi();
  const { status, direction } = data;

  // Tabbing onto a task the viewer zoomed or panned away from centres it, as React Flow does for
  // its own focusable nodes; a click needs no help.
  const reveal = (event: FocusEvent<HTMLButtonElement>) => {
    if (!event.currentTarget.matches(':focus-visible')) return;
    const { transform, width: viewWidth, height: viewHeight, setCenter } = store.getState();
    const [x, y, zoom] = transform;
    const left = positionAbsoluteX * zoom + x;
    const top = positionAbsoluteY * zoom + y;
    const inView = left >= 0 && top >= 0 && left + width * zoom <= viewWidth && top + height * zoom <= viewHeight;
    if (!inView) void setCenter(positionAbsoluteX + width / 2, positionAbsoluteY + height / 2, { zoom });
  };

  return (
    <>
      <Handle type="target" position={direction === 'LR' ? Position.Left : Position.Top} isConnectable={false} />
      {/* `nopan`: pressing a task selects it rather than starting a pan of the whole graph. */}
      <button
        type="button"
        className="dag-node-body nopan"
        aria-pressed={data.selected}
        onClick={() => data.onSelect(data.taskId)}
        onFocus={reveal}
      >
        {/* The name is the text: what the node shows, then its type if the status took its place
            (`load failed, type worker`), so the spoken name starts with the visible one. */}
        <span className={`dot tone-${tone(status)}${status === 'running' ? ' pulse' : ''}`} aria-hidden="true" />
        <span className="dag-node-id">{data.taskId}</span>{' '}
        {(status || data.kind) && <span className="dag-node-meta">{status ? label(status) : data.kind}</span>}
        {status && data.kind && <span className="sr-only">, type {data.kind}</span>}
      </button>
      <Handle type="source" position={direction === 'LR' ? Position.Right : Position.Bottom} isConnectable={false} />
    </>
  );
}

const nodeTypes = { task: TaskNodeView };

export interface DagViewProps {
  tasks: readonly (DagTask & { type?: string })[];
  statuses?: Readonly<Record<string, TaskStatus>>;
  selected?: string | null;
  onSelect: (taskId: string) => void;
  /** CSS height of the canvas. */
  height?: string;
  label: string;
}

export function DagView({
  tasks,
  statuses,
  selected = null,
  onSelect,
  height = '320px',
  label: ariaLabel,
}: DagViewProps) {
  const [frame, box] = useElementSize<HTMLDivElement>();
  // Left to right, unless the frame is too narrow for it and top to bottom fits at a larger zoom.
  const wide = useMemo(() => layoutDag(tasks, 'LR'), [tasks]);
  const cramped = fitZoom(wide, box) > 0 && fitZoom(wide, box) < 1;
  const tall = useMemo(() => (cramped ? layoutDag(tasks, 'TB') : null), [tasks, cramped]);
  const layout = tall && fitZoom(tall, box) > fitZoom(wide, box) ? tall : wide;

  const kinds = useMemo(() => new Map(tasks.map((t) => [t.id, t.type])), [tasks]);
  const shape =
    layout.direction + '|' + layout.nodes.map((n) => n.id).join('\n') + '|' + layout.edges.map((e) => e.id).join('\n');

  const built = useMemo(() => {
    const nodes: TaskNode[] = layout.nodes.map((n) => ({
      id: n.id,
      type: 'task',
      position: { x: n.x, y: n.y },
      width: n.width,
      height: n.height,
      draggable: false,
      connectable: false,
      selectable: false,
      // React Flow turns pointer events off on nodes that are neither selectable nor draggable;
      // ours hold a button.
      style: { pointerEvents: 'all' },
      className: `dag-node tone-${tone(statuses?.[n.id])}${selected === n.id ? ' is-selected' : ''}`,
      data: {
        taskId: n.id,
        kind: kinds.get(n.id),
        status: statuses?.[n.id],
        selected: selected === n.id,
        direction: layout.direction,
        onSelect,
      },
    }));
    const edges: Edge[] = layout.edges.map((e) => ({
      id: e.id,
      source: e.source,
      target: e.target,
      focusable: false,
      animated: statuses?.[e.target] === 'running',
      markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16 },
    }));
    return { nodes, edges };
  }, [layout, kinds, statuses, selected, onSelect]);

  const [nodes, setNodes, onNodesChange] = useNodesState<TaskNode>(built.nodes);
  const [edges, setEdges, onEdgesChange] = useEdgesState<Edge>(built.edges);
  useEffect(() => {
    setNodes(built.nodes);
    setEdges(built.edges);
  }, [built, setNodes, setEdges]);

  if (tasks.length === 0) return <p className="muted">No tasks to draw.</p>;
  return (
    <div className="dag-wrap">
      <div className="dag" ref={frame} style={{ height }} role="group" aria-label={ariaLabel}>
        <ReactFlow
          // A new shape (tasks, dependencies, direction) fits the view again; a status change does not.
          key={shape}
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          onNodesChange={onNodesChange}
          onEdgesChange={onEdgesChange}
          fitView
          fitViewOptions={{ padding: 0.15, maxZoom: 1.2 }}
          minZoom={0.2}
          maxZoom={2}
          nodesDraggable={false}
          nodesConnectable={false}
          nodesFocusable={false}
          edgesFocusable={false}
          elementsSelectable={false}
          panOnScroll={false}
          zoomOnScroll={false}
          preventScrolling={false}
        >
          <Controls showInteractive={false} />
        </ReactFlow>
      </div>
      {(layout.unknown.length > 0 || layout.cycle) && (
        <ul className="dag-problems">
          {layout.unknown.map((u) => (
            <li key={`${u.task}->${u.dependency}`}>
              <code>{u.task}</code> depends on <code>{u.dependency}</code>, which is not a task here
            </li>
          ))}
          {layout.cycle && <li>Dependency cycle: {layout.cycle.join(' → ')}</li>}
        </ul>
      )}
    </div>
  );
}
