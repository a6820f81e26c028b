/**
 * A sidecar's control plane: the cached configuration with its lease (ClusterView) and the
 * fail-over agent, wired the one way the sidecar runs them. The sidecar builds its own with this,
 * and so does the swarm bench (`bash bench/run.sh --swarm N`), which runs hundreds of them in one
 * process against a real cluster: what it measures is the code the sidecars run.
 */
import { ClusterView, ClusterViewOptions } from '../proxy/cluster-view';
import { controlClient } from '../cluster/store';
import type { Stats } from '../observe/stats';
import { FailoverAgent } from './agent';

export interface ControlPlaneOptions {
  /** kept by reference: the sidecar changes checkMs / leaseMs in it on a reload */
  view: ClusterViewOptions;
  /** run the fail-over agent (default true) */
  failover?: boolean;
}

export interface ControlPlane {
  view: ClusterView;
  agent: FailoverAgent | null;
  stats: Stats;
}

export function createControlPlane(o: ControlPlaneOptions): ControlPlane {
  const { stats, id, addr } = o.view;
  const view = new ClusterView(o.view);
  const agent =
    o.failover === false
      ? null
      : new FailoverAgent({
          id,
          addr,
          stats,
          getConfig: () => view.routing?.config ?? null,
          client: (a) => view.client(a),
          probeClient: (a, ms) => controlClient(a, { connectTimeoutMs: ms, commandTimeoutMs: ms }),
          onConfigWritten: () => void view.requestReload('this sidecar wrote a new configuration (fail-over)'),
          // the seats come with the version round: no read of the agent's own
          seats: () => view.seatReading(),
        });
  return { view, agent, stats };
}
