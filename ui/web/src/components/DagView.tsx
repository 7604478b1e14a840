// A workflow's tasks drawn as a graph (React Flow, laid out by dagre), coloured by the status
// of each task in one execution when there is one.

import { useEffect, useMemo } from 'react';
import {
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  useEdgesState,
  useNodesState,
  type Edge,
  type Node,
  type NodeProps,
} from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import type { TaskStatus } from '../api';
import { layoutDag, type DagTask } from '../lib/dag';
import { label, tone } from '../lib/status';

type TaskNodeData = {
  taskId: string;
  kind?: string;
  status?: TaskStatus;
  selected: boolean;
  onSelect?: (taskId: string) => void;
};
type TaskNode = Node<TaskNodeData, 'task'>;

function TaskNodeView({ data }: NodeProps<TaskNode>) {
  const status = data.status;
  const content = (
    <>
      <span className={`dot tone-${tone(status)}${status === 'running' ? ' pulse' : ''}`} aria-hidden="true" />
      <span className="dag-node-id">{data.taskId}</span>
      {(status || data.kind) && <span className="dag-node-meta">{status ? label(status) : data.kind}</span>}
    </>
  );
  return (
    <>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      {data.onSelect ? (
        <button
          type="button"
          className="dag-node-body"
          aria-pressed={data.selected}
          aria-label={`task ${data.taskId}${status ? `, ${label(status)}` : ''}`}
          onClick={() => data.onSelect?.(data.taskId)}
        >
          {content}
        </button>
      ) : (
        <div className="dag-node-body" aria-label={`task ${data.taskId}${status ? `, ${label(status)}` : ''}`}>
          {content}
        </div>
      )}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </>
  );
}

const nodeTypes = { task: TaskNodeView };

export interface DagViewProps {
  tasks: readonly (DagTask & { type?: string })[];
  statuses?: Readonly<Record<string, TaskStatus>>;
  selected?: string | null;
  onSelect?: (taskId: string) => void;
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
  const layout = useMemo(() => layoutDag(tasks), [tasks]);
  const kinds = useMemo(() => new Map(tasks.map((t) => [t.id, t.type])), [tasks]);
  const shape = layout.nodes.map((n) => n.id).join('\n') + '|' + layout.edges.map((e) => e.id).join('\n');

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
      className: `dag-node tone-${tone(statuses?.[n.id])}${selected === n.id ? ' is-selected' : ''}`,
      data: { taskId: n.id, kind: kinds.get(n.id), status: statuses?.[n.id], selected: selected === n.id, onSelect },
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
      <div className="dag" style={{ height }} role="group" aria-label={ariaLabel}>
        <ReactFlow
          // A new shape (tasks or dependencies) fits the view again; a status change does not.
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
