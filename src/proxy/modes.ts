/** The stateful and cluster-wide command families, by module. */
import type { Modes, SidecarContext } from './context';
import { fanout } from './fanout';
import { script } from './scripts';
import { transaction } from './transaction';
import { blocking } from './blocking';
import { pubsub } from './pubsub';

export function createModes(_ctx: SidecarContext): Modes {
  return { fanout, script, transaction, blocking, pubsub };
}
