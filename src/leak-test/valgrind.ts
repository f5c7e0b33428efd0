/**
 * Reads memcheck's text log and decides what counts against us.
 *
 * Attribution: a loss record or an error counts against napi-ownership when any frame of any of its stacks (the
 * access, the free, the allocation) is ours: in one of our addons' `.node` files, in our sources (native-cpp/,
 * native-rust/), or in a function of our cores or bindings. Everything else is node's; its known noise is removed by a
 * suppression file whose entries match only when node's own frames are on top.
 */
export interface LossRecord {
  kind: 'definitely' | 'indirectly' | 'possibly' | 'reachable';
  bytes: number;
  blocks: number;
  frames: string[];
  ours: boolean;
}

export interface MemcheckError {
  what: string;
  frames: string[];
  ours: boolean;
}

export interface MemcheckReport {
  pids: number;
  allocs: number;
  frees: number;
  bytesAllocated: number;
  /** Bytes in our frames, by kind. */
  ours: { definitely: number; indirectly: number; possibly: number };
  /** Bytes anywhere, by kind (ours and node's), after suppressions. */
  all: { definitely: number; indirectly: number; possibly: number };
  records: LossRecord[];
  errors: MemcheckError[];
  /** Errors with a frame of ours. */
  ourErrors: number;
  /** "All heap blocks were freed -- no leaks are possible" in every process. */
  allFreed: boolean;
}

/** The marks of our code in a frame line. */
const OURS = [
  /napi_ownership_cpp\.node/,
  /napi-ownership-rust\.[\w-]+\.node/,
  /\/native-cpp\//,
  /\/native-rust\//,
  /\bnapi_ownership(_core|_rust|_cpp)?\b/,
  /\bnapi_ownership::/,
  /\bcpp_(print_and_return|free_string)\w*/,
  /\bdispatcher_\w+/,
  /\b(print_and_return|free_string)(_len)?\b/,
  /\bseed00[03]/,
];

export function isOurs(frame: string): boolean {
  return OURS.some((re) => re.test(frame));
}

const num = (s: string | undefined) => (s ? Number(s.replace(/,/g, '')) : 0);

const LOSS = /^([\d,]+) (?:\(([\d,]+) direct, ([\d,]+) indirect\) )?bytes in ([\d,]+) blocks are (definitely lost|indirectly lost|possibly lost|still reachable)/;
const FRAME = /^\s*(?:at|by) 0x[0-9A-Fa-f]+: (.*)$/;

/** Parses one or more memcheck logs (one per process with --trace-children). */
export function parseMemcheck(logs: string[]): MemcheckReport {
  const report: MemcheckReport = {
    pids: 0,
    allocs: 0,
    frees: 0,
    bytesAllocated: 0,
    ours: { definitely: 0, indirectly: 0, possibly: 0 },
    all: { definitely: 0, indirectly: 0, possibly: 0 },
    records: [],
    errors: [],
    ourErrors: 0,
    allFreed: true,
  };
  for (const log of logs) {
    report.pids++;
    // Strip the ==pid== prefix; blocks are separated by prefix-only lines.
    const lines = log.split('\n').map((l) => l.replace(/^==\d+== ?/, ''));
    const heap = /total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated/.exec(log);
    report.allocs += num(heap?.[1]);
    report.frees += num(heap?.[2]);
    report.bytesAllocated += num(heap?.[3]);
    if (!log.includes('All heap blocks were freed -- no leaks are possible')) report.allFreed = false;

    let block: string[] = [];
    // A block can hold more than one report: valgrind prints a note ("Warning: set address range perms…", node's V8
    // reserving its cage) or a "Thread 11:" label straight above the next error, with no blank line between. Each
    // report starts at an unindented line (its stacks, "Address …" and "Block was alloc'd at" are indented).
    const flush = () => {
      let start = 0;
      for (let i = 1; i <= block.length; i++) {
        if (i === block.length || !/^\s/.test(block[i]!)) {
          classify(block.slice(start, i), report);
          start = i;
        }
      }
      block = [];
    };
    for (const line of lines) {
      if (line.trim() === '') flush();
      else block.push(line);
    }
    flush();
  }
  return report;
}

function classify(block: string[], report: MemcheckReport): void {
  const head = block[0]!;
  const frames = block.filter((l) => FRAME.test(l)).map((l) => FRAME.exec(l)![1]!);
  const loss = LOSS.exec(head);
  if (loss) {
    const kinds: Record<string, LossRecord['kind']> = {
      'definitely lost': 'definitely',
      'indirectly lost': 'indirectly',
      'possibly lost': 'possibly',
      'still reachable': 'reachable',
    };
    const kind = kinds[loss[5]!]!;
    // "X (Y direct, Z indirect) bytes": Y are this record's own; Z are reported again in indirectly-lost records.
    const bytes = loss[2] ? num(loss[2]) : num(loss[1]);
    const record: LossRecord = { kind, bytes, blocks: num(loss[4]), frames, ours: frames.some(isOurs) };
    report.records.push(record);
    if (kind !== 'reachable') {
      report.all[kind] += bytes;
      if (record.ours) report.ours[kind] += bytes;
    }
    return;
  }
  // Anything else with a stack is an error report (invalid read/write/free, uninitialised value, mismatched delete...).
  // Valgrind's own notes (e.g. "Warning: set address range perms: large range") are not errors of the program.
  if (frames.length === 0 || /SUMMARY|^Memcheck|^Copyright|^Using Valgrind|^Command:|^Parent PID|^Warning:/.test(head)) return;
  const error: MemcheckError = { what: head.trim(), frames, ours: frames.some(isOurs) };
  report.errors.push(error);
  if (error.ours) report.ourErrors++;
}

/**
 * The first few frames of a record, for a human: from two above our first frame, and the top two frames as well when
 * that skips them (an error is where the top frame is: V8's GC found under one of our calls is not ours to fix).
 */
export function stackSummary(frames: string[], max = 6): string {
  const ours = frames.findIndex(isOurs);
  const start = Math.max(0, Math.min(ours === -1 ? 0 : ours - 2, frames.length - max));
  const top = start > 2 ? [...frames.slice(0, 2), `… ${start - 2} frames …`] : frames.slice(0, start);
  return [...top, ...frames.slice(start, start + max)].join('\n      ');
}
