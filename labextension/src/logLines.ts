/**
 * Reading engine log lines: each line's level, and long runs of engine detail (the same
 * prefix, nothing wrong in them) folded into one line.
 */

export type Level = 'info' | 'warning' | 'error' | 'issue';

/** One line of a replica's log, with its level and the issue code detected in it. */
export interface LogLine {
  replica: string;
  text: string;
  code: string | null;
  level: Level;
}

/** A run of engine detail shown as one line. */
export interface IFold {
  folded: true;
  prefix: string;
  start: number; // the index of its first line among the lines shown
  lines: LogLine[];
}

const FOLD_MIN = 8; // runs shorter than this stay as they are
const ERROR = /\b(error|failed|failure|fatal|exception|traceback|abort(ed)?)\b/i;
const WARNING = /\b(warn(ing)?|deprecated)\b/i;
// llama.cpp's lines: a timestamp, then a level letter (I, W, E, D)
const LETTER = /^\s*[\d.:]+\s+([IWED])\s/;
// a line's lead: timestamps and level words, in any order
const LEAD = /^\s*(?:(?:[\d.:\-/T]+|INFO|WARNING|WARN|ERROR|DEBUG|[IWED])\s+)*/;

/** A line's level: a detected issue, else the level the engine wrote (llama.cpp's letter),
 * else an error or warning by its words, else info. */
export function levelOf(text: string, code: string | null): Level {
  if (code) {
    return 'issue';
  }
  const letter = text.match(LETTER)?.[1];
  if (letter) {
    return letter === 'E' ? 'error' : letter === 'W' ? 'warning' : 'info';
  }
  return ERROR.test(text) ? 'error' : WARNING.test(text) ? 'warning' : 'info';
}

/** What a line's run is named by: after its timestamp and level, the words before its first
 * ':' (up to three), or its first word. */
export function prefixOf(text: string): string {
  const rest = text.replace(LEAD, '');
  const match = rest.match(/^([^:\s]+(?:\s+[^:\s]+){0,2}):/) ?? rest.match(/^(\S+)/);
  return match ? match[1].replace(/\s+/g, ' ') : '';
}

/**
 * The lines with each run of FOLD_MIN or more info lines of one replica and one prefix
 * folded, except the runs whose start is in opened.
 */
export function foldRuns(lines: LogLine[], opened: Set<number>): (LogLine | IFold)[] {
  const result: (LogLine | IFold)[] = [];
  let start = 0;
  while (start < lines.length) {
    const first = lines[start];
    const prefix = prefixOf(first.text);
    let end = start + 1;
    while (
      first.level === 'info' &&
      prefix &&
      end < lines.length &&
      lines[end].level === 'info' &&
      lines[end].replica === first.replica &&
      prefixOf(lines[end].text) === prefix
    ) {
      end++;
    }
    const run = lines.slice(start, end);
    if (run.length >= FOLD_MIN && !opened.has(start)) {
      result.push({ folded: true, prefix, start, lines: run });
    } else {
      result.push(...run);
    }
    start = end;
  }
  return result;
}
