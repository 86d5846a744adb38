/**
 * Results as Markdown tables: printed at the end of a session and written into
 * README.md between `<!-- bench:start -->` and `<!-- bench:end -->` (pino's way: the
 * runner regenerates the documented figures, nobody types them).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { describeMachine } from '../lib/machine.js';
import type { BenchResults, ScenarioResult, Series } from '../lib/results.js';

export const README_MARKERS = { start: '<!-- bench:start -->', end: '<!-- bench:end -->' } as const;

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatMiB(kb: number | undefined): string {
  return kb === undefined ? '—' : `${Math.round(kb / 1024)} MiB`;
}

function formatFigure(value: number | string): string {
  return typeof value === 'number' ? String(value) : value;
}

/** How long this series took as a fraction of layerpool's (same scenario, plain label). */
function versusLayerpool(scenario: ScenarioResult, series: Series): string {
  const ours = scenario.series.find((s) => s.puller === 'layerpool' && series.label.replace(series.puller, 'layerpool') === s.label);
  if (series.puller === 'layerpool' || ours === undefined || !(ours.summary.median > 0)) return '';
  return `${(series.summary.median / ours.summary.median).toFixed(2)}x`;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`, ...rows.map((r) => `| ${r.map(escapeCell).join(' | ')} |`)].join('\n');
}

/** One row per series: scenario, who, median, min–max, peak RSS, its time as a multiple of layerpool's. */
export function resultsTable(results: BenchResults): string {
  const rows: string[][] = [];
  for (const scenario of results.scenarios) {
    if (scenario.series.length === 0) {
      rows.push([scenario.title, '—', '—', '—', '—', scenario.notes[0] ?? 'no figures']);
      continue;
    }
    scenario.series.forEach((series, i) => {
      rows.push([
        i === 0 ? scenario.title : '',
        series.label,
        formatMs(series.summary.median),
        series.summary.n > 1 ? `${formatMs(series.summary.min)} – ${formatMs(series.summary.max)}` : '',
        formatMiB(series.rssKb?.median),
        versusLayerpool(scenario, series),
      ]);
    });
  }
  return table(['scenario', 'who', 'median', 'min – max', 'peak RSS', 'time ÷ layerpool'], rows);
}

/** Derived figures and notes per scenario; empty when no scenario has any. */
export function figuresTable(results: BenchResults): string {
  const rows = results.scenarios
    .filter((s) => Object.keys(s.figures).length > 0 || s.notes.length > 0)
    .map((s) => [
      s.title,
      Object.entries(s.figures).map(([k, v]) => `${k}: ${formatFigure(v)}`).join('; '),
      s.notes.join('; '),
    ]);
  return rows.length === 0 ? '' : table(['scenario', 'figures', 'notes'], rows);
}

/** The block between the README markers. */
export function readmeBlock(results: BenchResults, resultsPath: string): string {
  const images = results.scenarios.flatMap((s) => (s.image ? [s.image] : []));
  const sizes = [...new Map(images.map((i) => [i.name, i])).values()]
    .map((i) => `${i.name} ${i.layers} layer${i.layers === 1 ? '' : 's'}, ${(i.compressedBytes / 2 ** 20).toFixed(0)} MiB compressed / ${(i.uncompressedBytes / 2 ** 20).toFixed(0)} MiB`)
    .join('; ');
  return [
    README_MARKERS.start,
    `Figures of ${results.date.slice(0, 10)}, \`${results.command}\`, ${results.runs} runs each, on ${describeMachine(results.machine)}; page cache ${results.pageCache}; layerpool run from ${results.via}. Full results: \`${resultsPath}\` (and the \`.html\` report beside it).`,
    '',
    ...(sizes ? [`Images: ${sizes}.`, ''] : []),
    ...(results.notes.length > 0 ? [`Notes: ${results.notes.join('; ')}.`, ''] : []),
    resultsTable(results),
    '',
    figuresTable(results),
    README_MARKERS.end,
  ].join('\n');
}

/** Replace the README's block; false when the markers are missing (nothing written). */
export async function updateReadme(readmePath: string, block: string): Promise<boolean> {
  const text = await readFile(readmePath, 'utf8');
  const start = text.indexOf(README_MARKERS.start);
  const end = text.indexOf(README_MARKERS.end);
  if (start < 0 || end < start) return false;
  await writeFile(readmePath, `${text.slice(0, start)}${block}${text.slice(end + README_MARKERS.end.length)}`);
  return true;
}
