/**
 * Partition cases (cases.ts, issue 23): A sidecar stopped across a kill -9 of a master; a link that flaps faster than down-after (no fail-over).
 */
import { runCases } from './cases';

runCases([3, 4]);
