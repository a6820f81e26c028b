/** Stateful and cluster-wide command families (issue 3). */
import type { Modes, SidecarContext } from './context';

export function createModes(_ctx: SidecarContext): Modes {
  const no = (what: string) => (s: import('./session').ClientSession, _c: unknown, spec: { name: string }) =>
    s.refuse(spec.name, `ERR ringside: ${spec.name.toUpperCase()} (${what}) is not supported yet`);
  return {
    fanout: no('keyspace-wide'),
    script: no('scripts'),
    transaction: no('transactions'),
    blocking: no('blocking'),
    pubsub: no('pub/sub'),
  };
}
