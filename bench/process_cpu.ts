/**
 * CPU time and memory of the processes a benchmark runs, read from `/proc` (Linux): per process
 * from `/proc/<pid>/stat`, for the whole machine from `/proc/stat`, so a figure can be given with
 * the CPU seconds each party (client, servers, PostgreSQL, Ceph, everything else) spent on it.
 * @module
 */

/** Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 on Linux everywhere). */
const TICKS = 100;

/** Returns the PIDs of one party at the moment it is called (a set that may change). */
export type PidSource = () => number[];

/** CPU seconds by party and for the whole machine, at one instant. */
export interface CpuSample {
  /** `performance.now()` when taken. */
  at: number;
  /** CPU seconds of all cores since boot, by kind of work. */
  machine: MachineCpu;
  /** CPU seconds of each party's processes (their own and their reaped children's). */
  parties: Record<string, number>;
}

/** Busy CPU seconds of the whole machine, from the `cpu` line of `/proc/stat`. */
export interface MachineCpu {
  /** In processes: user, nice and system time. */
  tasks: number;
  /**
   * Interrupts and softirqs (on loopback, much of the network stack's work lands here). Without
   * `CONFIG_IRQ_TIME_ACCOUNTING` the same ticks are also in the interrupted process's stime.
   */
  irq: number;
  /** Time the hypervisor gave this VM's CPUs to someone else while they had work. */
  steal: number;
  /** Idle time while some disk I/O was outstanding (not busy: a hint of a disk-bound run). */
  iowait: number;
}

/** What happened between two samples: wall seconds, machine and party CPU seconds. */
export interface CpuUse {
  wall: number;
  machine: MachineCpu;
  parties: Record<string, number>;
}

/** The resident memory of a process in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
}

/** The fields of `/proc/<pid>/stat` after the command name, or null when the process is gone. */
function statFields(pid: number): string[] | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name is in parentheses and may itself hold spaces or parentheses.
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/** utime + stime + cutime + cstime of a process in seconds (0 when it is gone). */
export function processCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  if (!fields) return 0;
  // Fields 14–17 of stat(5); `fields[0]` is field 3 (state).
  return fields.slice(11, 15).reduce((sum, ticks) => sum + Number(ticks), 0) / TICKS;
}

/** Busy CPU seconds of the whole machine since boot. */
export function machineCpu(): MachineCpu {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const [user, nice, system, _idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/)
    .slice(1).map(Number);
  return {
    tasks: (user + nice + system) / TICKS,
    irq: (irq + softirq) / TICKS,
    steal: (steal ?? 0) / TICKS,
    iowait: iowait / TICKS,
  };
}

/** All busy CPU seconds of a {@link MachineCpu}. */
export function busySeconds(machine: MachineCpu): number {
  return machine.tasks + machine.irq + machine.steal;
}

function machineDelta(before: MachineCpu, after: MachineCpu): MachineCpu {
  return {
    tasks: after.tasks - before.tasks,
    irq: after.irq - before.irq,
    steal: after.steal - before.steal,
    iowait: after.iowait - before.iowait,
  };
}

/** Takes one sample of every party's CPU time and the machine's. */
export function sampleCpu(parties: Record<string, PidSource>): CpuSample {
  const seconds: Record<string, number> = {};
  for (const [name, pids] of Object.entries(parties)) {
    seconds[name] = pids().reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  }
  return { at: performance.now(), machine: machineCpu(), parties: seconds };
}

/** The CPU use between two samples of the same parties. */
export function cpuUse(before: CpuSample, after: CpuSample): CpuUse {
  const parties: Record<string, number> = {};
  for (const name of Object.keys(after.parties)) {
    parties[name] = Math.max(0, after.parties[name] - (before.parties[name] ?? 0));
  }
  return {
    wall: (after.at - before.at) / 1000,
    machine: machineDelta(before.machine, after.machine),
    parties,
  };
}

/** Adds up several CPU uses (e.g. the runs of one figure). */
export function sumCpuUse(uses: CpuUse[]): CpuUse {
  const total: CpuUse = {
    wall: 0,
    machine: { tasks: 0, irq: 0, steal: 0, iowait: 0 },
    parties: {},
  };
  for (const use of uses) {
    total.wall += use.wall;
    total.machine.tasks += use.machine.tasks;
    total.machine.irq += use.machine.irq;
    total.machine.steal += use.machine.steal;
    total.machine.iowait += use.machine.iowait;
    for (const [name, seconds] of Object.entries(use.parties)) {
      total.parties[name] = (total.parties[name] ?? 0) + seconds;
    }
  }
  return total;
}

/** Every PID in `/proc`. */
function allPids(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (/^\d+$/.test(entry.name)) pids.push(Number(entry.name));
  }
  return pids;
}

/** The argv of a process, or [] when it is gone or unreadable. */
function commandLine(pid: number): string[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter((a) => a !== "");
  } catch {
    return [];
  }
}

/**
 * The PostgreSQL server listening on `port` and its backends (the postmaster found by its
 * `-p <port>` argument, the others by parent PID). Resolved on each call: backends come and go.
 */
export function postgresPids(port: number): PidSource {
  let postmaster: number | undefined;
  return () => {
    if (postmaster === undefined || statFields(postmaster) === null) {
      postmaster = allPids().find((pid) => {
        const argv = commandLine(pid);
        return argv[0]?.endsWith("/postgres") &&
          argv.some((arg, i) => arg === "-p" && argv[i + 1] === String(port));
      });
      if (postmaster === undefined) return [];
    }
    const parent = String(postmaster);
    return [postmaster, ...allPids().filter((pid) => statFields(pid)?.[1] === parent)];
  };
}

/**
 * The daemons of the throw-away Ceph cluster (tests/ceph_rgw.ts) whose gateway listens on
 * `endpoint`: every process started with `-c <dir>/ceph.conf` for the config naming that port.
 */
export function cephPids(endpoint: string): PidSource {
  const listen = `endpoint=127.0.0.1:${new URL(endpoint).port}`;
  let pids: number[] | undefined;
  return () => {
    if (pids) return pids;
    const byConfig = new Map<string, number[]>();
    for (const pid of allPids()) {
      const argv = commandLine(pid);
      const at = argv.indexOf("-c");
      if (at < 0 || !argv[at + 1]?.endsWith("ceph.conf")) continue;
      if (!/(^|\/)(ceph-mon|ceph-osd|radosgw)$/.test(argv[0])) continue;
      byConfig.set(argv[at + 1], [...byConfig.get(argv[at + 1]) ?? [], pid]);
    }
    for (const [config, found] of byConfig) {
      try {
        if (Deno.readTextFileSync(config).includes(listen)) return pids = found;
      } catch {
        // another cluster going away
      }
    }
    return [];
  };
}
