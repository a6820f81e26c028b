/**
 * Partition cases (cases.ts, issue 23): An asymmetric cut (a sidecar that reaches only the old master); a partition that heals in the middle of the switch.
 */
import { runCases } from './cases';

runCases([5, 6]);
