/**
 * The machine a benchmark ran on, stored with its results: figures mean nothing without
 * cores, memory, the disk under the roots, kernel and Node version.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryBytes: number;
  kernel: string;
  node: string;
  /** `df -PT` of the folder the roots and registry storage are in. */
  disk: { path: string; device: string; fsType: string; sizeBytes: number; availableBytes: number } | undefined;
  root: boolean;
}

function cpuModel(): string {
  const fromNode = cpus()[0]?.model.trim();
  if (fromNode) return fromNode;
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function diskOf(path: string): MachineInfo['disk'] {
  try {
    const line = execFileSync('df', ['-PT', '-B1', path], { encoding: 'utf8' }).trim().split('\n').at(-1) ?? '';
    const [device, fsType, size, , available] = line.split(/\s+/);
    if (device === undefined || fsType === undefined) return undefined;
    return { path, device, fsType, sizeBytes: Number(size), availableBytes: Number(available) };
  } catch {
    return undefined;
  }
}

export function machineInfo(workDir: string): MachineInfo {
  return {
    cores: availableParallelism(),
    cpuModel: cpuModel(),
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    disk: diskOf(workDir),
    root: process.getuid?.() === 0,
  };
}

/** One line for tables and the README: `2 cores (AMD EPYC), 24 GiB, ext4 on /dev/vda, Linux 6.1, Node v20`. */
export function describeMachine(m: MachineInfo): string {
  const gib = (b: number) => `${Math.round(b / 2 ** 30)} GiB`;
  const disk = m.disk ? `, ${m.disk.fsType} on ${m.disk.device}` : '';
  return `${m.cores} cores (${m.cpuModel}), ${gib(m.memoryBytes)} RAM${disk}, Linux ${m.kernel}, Node ${m.node}`;
}
