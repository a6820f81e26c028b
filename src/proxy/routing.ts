/**
 * One configuration as the data path uses it: the slot table and every per-node fact precomputed
 * once per configuration, so routing a command reads arrays. Pure: built from the document.
 */
import { ClusterConfig, SlotTable, masters as mastersOf } from '../cluster/config';

/** What the data path needs from one configuration, precomputed. */
export class Routing {
  readonly config: ClusterConfig;
  readonly version: string;
  readonly table: SlotTable;
  /** node index (table.names) → master address */
  readonly masterOf: string[];
  readonly replicasOf: string[][];
  /** node index under switching, or -1 */
  readonly switchingIndex: number;
  /** slot → migration, for migrating slots only */
  readonly migrating: Map<number, { from: string; to: string; toAddress: string }>;
  readonly masters: string[];
  constructor(config: ClusterConfig, version: string) {
    this.config = config;
    this.version = version;
    this.table = SlotTable.from(config);
    this.masterOf = this.table.names.map((n) => config.nodes[n]!.master);
    this.replicasOf = this.table.names.map((n) => config.nodes[n]!.replicas);
    this.switchingIndex = config.switching ? this.table.names.indexOf(config.switching.node) : -1;
    this.migrating = new Map(
      Object.entries(config.migrating).map(([s, m]) => [Number(s), { ...m, toAddress: config.nodes[m.to]!.master }]),
    );
    this.masters = mastersOf(config);
  }
}
