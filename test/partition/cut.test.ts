/**
 * Partition cases (cases.ts, issue 23): A host cut off the bridge: the host of a master and its sidecar, and the host of another master.
 */
import { runCases } from './cases';

runCases([1, 2]);
