/**
 * Pull progress as `docker pull` shows it: one line per layer (`Waiting`, `Downloading
 * [=====>    ] 12.3MB/45.6MB`, `Extracting 80.1MB`, `Verifying`, `Committed`,
 * `Pull complete` / `Already exists`), a resolve line, an overall line with bytes and
 * rate, and a summary line at the end.
 *
 *   tty:    redrawn in place (cursor up + clear line), at most every 100 ms
 *   plain:  one line per state change, no bars (logs, pipes)
 *   json:   every event as one JSON line (NDJSON), then `{"type":"summary",...}`
 *   quiet:  only the image name at the end
 */
import type { PullSummary } from '../server/types.js';
import type { PullProgressEvent } from '../unpack/progress.js';
import { formatBytes, formatDuration } from './output.js';

export type ProgressMode = 'tty' | 'plain' | 'json' | 'quiet';

export interface PullProgressOptions {
  out: { write(text: string): unknown; columns?: number };
  mode: ProgressMode;
  ref: string;
  /** With `json`: leave the events out, print only the summary. */
  summaryOnly?: boolean;
  now?: () => number;
}

export const PROGRESS_DEFAULTS = { redrawIntervalMs: 100, barWidth: 30 } as const;

type Phase = 'waiting' | 'downloading' | 'extracting' | 'verifying' | 'committed' | 'done' | 'exists';

interface LayerState {
  id: string;
  phase: Phase;
  fetched: number;
  total: number;
  applied: number;
}

const CLEAR_LINE = '\x1b[2K';
const cursorUp = (lines: number) => `\x1b[${lines}A`;

/** `3a6d91fe4abe`, as docker names layers. */
function layerId(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);
}

function bar(done: number, total: number, width: number): string {
  const filled = total > 0 ? Math.min(width, Math.floor((done / total) * width)) : 0;
  if (filled >= width) return `[${'='.repeat(width)}]`;
  return `[${'='.repeat(filled)}>${' '.repeat(width - filled - 1)}]`;
}

/** A layer event's status as the phase shown: a download that has all its bytes is extracting. */
function phaseOf(event: Extract<PullProgressEvent, { type: 'layer' }>): Phase {
  if (event.status === 'downloading' || event.status === 'extracting') return event.fetched < event.total ? 'downloading' : 'extracting';
  return event.status;
}

/** One summary line for people. */
export function formatSummary(summary: PullSummary): string {
  const seconds = summary.durationMs / 1000;
  const rate = seconds > 0 ? summary.bytesFetched / 1e6 / seconds : 0;
  return (
    `Pulled ${summary.name} (${summary.digest}): ${summary.layersApplied}/${summary.layers} layers applied, ` +
    `${formatBytes(summary.bytesFetched)} fetched, ${formatBytes(summary.bytesApplied)} written in ${formatDuration(summary.durationMs)} ` +
    `(${rate.toFixed(2)} MB/s)`
  );
}

export class PullProgress {
  private readonly layers = new Map<string, LayerState>();
  private readonly header: string[] = [];
  private readonly started: number;
  private readonly now: () => number;
  private drawn = 0;
  private lastDraw = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: PullProgressOptions) {
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
    this.headerLine(`Resolving ${options.ref}`);
    this.schedule();
  }

  event(event: PullProgressEvent): void {
    const { mode } = this.options;
    if (mode === 'json') {
      if (!this.options.summaryOnly) this.options.out.write(`${JSON.stringify(event)}\n`);
      return;
    }
    if (mode === 'quiet') return;
    switch (event.type) {
      case 'resolved':
        this.headerLine(`Resolved ${event.ref}: ${event.digest}`, 0);
        break;
      case 'manifest':
        this.headerLine(`Manifest ${event.digest}${event.platform ? ` (${event.platform})` : ''}: ${event.layers} layers`);
        break;
      case 'layer': {
        const layer = this.layer(event.digest);
        layer.fetched = Math.max(layer.fetched, event.fetched);
        layer.total = event.total;
        if (event.applied !== undefined) layer.applied = Math.max(layer.applied, event.applied);
        this.setPhase(layer, phaseOf(event));
        break;
      }
      case 'committed':
        this.setPhase(this.layer(event.digest), 'committed');
        break;
      case 'done':
        break;
    }
    this.schedule();
  }

  /** The pull succeeded: last redraw, then the summary (or just the name with --quiet). */
  finish(summary: PullSummary): void {
    const { out, mode } = this.options;
    this.stop();
    if (mode === 'json') out.write(`${JSON.stringify({ type: 'summary', ...summary })}\n`);
    else if (mode === 'quiet') out.write(`${summary.name}\n`);
    else out.write(`${formatSummary(summary)}\n`);
  }

  /** The pull failed: leave the last state on screen (the error is printed after). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.options.mode === 'tty') this.draw();
  }

  private layer(digest: string): LayerState {
    let layer = this.layers.get(digest);
    if (!layer) {
      layer = { id: layerId(digest), phase: 'waiting', fetched: 0, total: 0, applied: 0 };
      this.layers.set(digest, layer);
      if (this.options.mode === 'plain') this.options.out.write(`${layer.id}: ${this.layerText(layer)}\n`);
    }
    return layer;
  }

  private setPhase(layer: LayerState, phase: Phase): void {
    if (layer.phase === phase) return;
    layer.phase = phase;
    if (this.options.mode === 'plain') this.options.out.write(`${layer.id}: ${this.layerText(layer)}\n`);
  }

  /** Add a header line, or replace the one at `at`. */
  private headerLine(text: string, at?: number): void {
    if (at !== undefined && at < this.header.length) this.header[at] = text;
    else this.header.push(text);
    if (this.options.mode === 'plain') this.options.out.write(`${text}\n`);
  }

  private layerText(layer: LayerState): string {
    const tty = this.options.mode === 'tty';
    switch (layer.phase) {
      case 'waiting':
        return 'Waiting';
      case 'downloading':
        return tty
          ? `Downloading ${bar(layer.fetched, layer.total, PROGRESS_DEFAULTS.barWidth)} ${formatBytes(layer.fetched)}/${formatBytes(layer.total)}`
          : `Downloading ${formatBytes(layer.total)}`;
      case 'extracting':
        return tty || layer.applied > 0 ? `Extracting ${formatBytes(layer.applied)}` : 'Extracting';
      case 'verifying':
        return 'Verifying';
      case 'committed':
        return 'Committed';
      case 'done':
        return 'Pull complete';
      case 'exists':
        return 'Already exists';
    }
  }

  private overallLine(): string {
    let fetched = 0;
    let total = 0;
    let applied = 0;
    for (const layer of this.layers.values()) {
      if (layer.phase === 'exists') continue;
      fetched += layer.fetched;
      total += layer.total;
      applied += layer.applied;
    }
    const seconds = (this.now() - this.started) / 1000;
    const rate = seconds > 0 ? fetched / seconds : 0;
    return `Total: ${formatBytes(fetched)}/${formatBytes(total)} fetched, ${formatBytes(applied)} written, ${formatBytes(rate)}/s`;
  }

  private schedule(): void {
    if (this.options.mode !== 'tty' || this.timer) return;
    const wait = PROGRESS_DEFAULTS.redrawIntervalMs - (this.now() - this.lastDraw);
    if (wait <= 0) {
      this.draw();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, wait);
    this.timer.unref();
  }

  private draw(): void {
    const width = Math.max(20, (this.options.out.columns || 80) - 1);
    const lines = [
      ...this.header,
      ...[...this.layers.values()].map((layer) => `${layer.id}: ${this.layerText(layer)}`),
      ...(this.layers.size > 0 ? [this.overallLine()] : []),
    ].map((line) => line.slice(0, width));
    let text = this.drawn > 0 ? cursorUp(this.drawn) : '';
    for (const line of lines) text += `${CLEAR_LINE}${line}\n`;
    this.options.out.write(text);
    this.drawn = lines.length;
    this.lastDraw = this.now();
  }
}
