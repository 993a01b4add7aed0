/**
 * All CLI commands. Each module exports `register(program)`; add one import and one call here.
 */
import type { Command } from 'commander';
import { register as registerTestnet } from './testnet.js';
import { register as registerInspect } from './inspect.js';
import { register as registerInspectDescriptor } from './inspect-descriptor.js';
import { register as registerKeygen } from './keygen.js';
import { register as registerInit } from './init.js';
import { register as registerRun } from './run.js';
import { register as registerConfigCheck } from './config-check.js';
import { register as registerDemo } from './demo.js';
import { register as registerCluster } from './cluster.js';
import { register as registerDoctor } from './doctor.js';
import { register as registerToken } from './token.js';
import { register as registerJoin } from './join.js';
import { register as registerStatus } from './status.js';
import { register as registerNode } from './node.js';

export function registerCommands(_program: Command): void {
  // Commands are added here as they land.
  registerTestnet(_program);
  registerInspect(_program);
  registerInspectDescriptor(_program);
  registerKeygen(_program);
  registerInit(_program);
  registerRun(_program);
  registerConfigCheck(_program);
  registerDemo(_program);
  registerCluster(_program);
  registerDoctor(_program);
  registerToken(_program);
  registerJoin(_program);
  registerStatus(_program);
  registerNode(_program);
}
