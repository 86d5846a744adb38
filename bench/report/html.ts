/**
 * The HTML report: one self-contained file (inline CSS and SVG, no scripts, nothing
 * fetched). Per scenario a bar chart — medians as bars, min–max as whiskers, layerpool
 * next to its peers — and for cold pulls a per-layer timeline of one layerpool pull with
 * fetch, apply and commit lanes.
 */
import { describeMachine } from '../lib/machine.js';
import type { LayerTimeline } from '../lib/pull-once.js';
import type { BenchResults, ScenarioResult, Series } from '../lib/results.js';
import { figuresTable, formatMiB, formatMs } from './markdown.js';

const COLOURS: Record<string, string> = {
  layerpool: '#2b6cb0',
  ctr: '#dd6b20',
  'skopeo+umoci': '#38a169',
  node: '#718096',
  'GNU tar': '#805ad5',
};
const LANES = [
  { key: 'fetch', colour: '#63b3ed' },
  { key: 'apply', colour: '#f6ad55' },
  { key: 'commit', colour: '#68d391' },
] as const;

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return ([1, 2, 5, 10].map((m) => m * power).find((v) => v >= value) as number);
}

/** SVG coordinates to a tenth of a pixel: finer is invisible and only makes the file bigger. */
const px = (v: number): string => String(Math.round(v * 10) / 10);

function axis(x0: number, width: number, y: number, max: number): string {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const x = px(x0 + f * width);
    return `<line x1="${x}" y1="${y}" x2="${x}" y2="${y + 4}" stroke="#999"/><text x="${x}" y="${y + 16}" text-anchor="middle" class="tick">${f === 0 ? '0' : escape(formatMs(f * max))}</text>`;
  });
  return `<line x1="${x0}" y1="${y}" x2="${x0 + width}" y2="${y}" stroke="#999"/>${ticks.join('')}`;
}

export function barChart(series: readonly Series[]): string {
  const labelWidth = 190;
  const plotWidth = 460;
  const valueWidth = 150;
  const row = 26;
  const top = 8;
  const max = niceMax(Math.max(...series.map((s) => s.summary.max)));
  const height = top + series.length * row + 26;
  const bars = series.map((s, i) => {
    const y = top + i * row;
    const scale = (v: number) => px(labelWidth + (v / max) * plotWidth);
    const colour = COLOURS[s.puller] ?? '#4a5568';
    const whisker = s.summary.n > 1
      ? `<line x1="${scale(s.summary.min)}" y1="${y + 10}" x2="${scale(s.summary.max)}" y2="${y + 10}" stroke="#222"/>` +
        `<line x1="${scale(s.summary.min)}" y1="${y + 5}" x2="${scale(s.summary.min)}" y2="${y + 15}" stroke="#222"/>` +
        `<line x1="${scale(s.summary.max)}" y1="${y + 5}" x2="${scale(s.summary.max)}" y2="${y + 15}" stroke="#222"/>`
      : '';
    const rss = s.rssKb ? `, ${formatMiB(s.rssKb.median)}` : '';
    return `<text x="${labelWidth - 8}" y="${y + 14}" text-anchor="end">${escape(s.label)}</text>` +
      `<rect x="${labelWidth}" y="${y + 3}" width="${px(Math.max(1, (s.summary.median / max) * plotWidth))}" height="14" fill="${colour}"><title>${escape(`${s.label}: median ${formatMs(s.summary.median)}, min ${formatMs(s.summary.min)}, max ${formatMs(s.summary.max)} (n=${s.summary.n})`)}</title></rect>` +
      whisker +
      `<text x="${labelWidth + plotWidth + 8}" y="${y + 14}">${escape(formatMs(s.summary.median) + rss)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + valueWidth}" height="${height}" role="img">${bars.join('')}${axis(labelWidth, plotWidth, top + series.length * row + 2, max)}</svg>`;
}

export function timelineChart(layers: readonly LayerTimeline[]): string {
  const labelWidth = 130;
  const plotWidth = 620;
  const laneHeight = 6;
  const row = LANES.length * laneHeight + 8;
  const top = 22;
  const end = Math.max(...layers.flatMap((l) => LANES.map((lane) => l[lane.key]?.[1] ?? 0)));
  const max = niceMax(end);
  const scale = (t: number) => labelWidth + (t / max) * plotWidth;
  const legend = LANES.map((lane, i) => `<rect x="${labelWidth + i * 90}" y="4" width="12" height="10" fill="${lane.colour}"/><text x="${labelWidth + i * 90 + 16}" y="13">${lane.key}</text>`).join('');
  const rows = layers.map((layer, i) => {
    const y = top + i * row;
    const label = `layer ${layer.index} · ${(layer.compressedBytes / 2 ** 20).toFixed(1)} MiB`;
    const lanes = LANES.map((lane, j) => {
      const span = layer[lane.key];
      if (span === undefined) return '';
      const [from, to] = span;
      return `<rect x="${px(scale(from))}" y="${y + j * laneHeight}" width="${px(Math.max(1, scale(to) - scale(from)))}" height="${laneHeight - 1}" fill="${lane.colour}"><title>${escape(`layer ${layer.index} ${lane.key}: ${formatMs(from)} → ${formatMs(to)}`)}</title></rect>`;
    });
    return `<text x="${labelWidth - 8}" y="${y + 14}" text-anchor="end">${escape(label)}</text>${lanes.join('')}`;
  });
  const height = top + layers.length * row + 24;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + 40}" height="${height}" role="img">${legend}${rows.join('')}${axis(labelWidth, plotWidth, top + layers.length * row + 2, max)}</svg>`;
}

function scenarioSection(scenario: ScenarioResult): string {
  const image = scenario.image
    ? `<p class="image">${escape(`${scenario.image.name}: ${scenario.image.layers} layer(s), ${(scenario.image.compressedBytes / 2 ** 20).toFixed(1)} MiB compressed, ${(scenario.image.uncompressedBytes / 2 ** 20).toFixed(1)} MiB uncompressed`)}</p>`
    : '';
  const figures = Object.entries(scenario.figures).map(([k, v]) => `<li>${escape(`${k}: ${v}`)}</li>`).join('');
  const notes = scenario.notes.map((n) => `<li class="note">${escape(n)}</li>`).join('');
  const timeline = scenario.timeline && scenario.timeline.length > 0
    ? `<h3>One layerpool pull, layer by layer (median run)</h3><p>fetch: first to last byte in the content store; apply: from the task's dispatch to the pool (waiting for a free worker included) to the verified diffID; commit: from its turn in chain order to committed.</p>${timelineChart(scenario.timeline)}`
    : '';
  const output = scenario.output ? `<details><summary>output</summary><pre>${escape(scenario.output)}</pre></details>` : '';
  return `<section id="${escape(scenario.id)}"><h2>${escape(scenario.title)}${scenario.failed ? ' <span class="failed">(failed)</span>' : ''}</h2>
<p>${escape(scenario.what)}</p>${image}
${scenario.series.length > 0 ? barChart(scenario.series) : ''}
<ul>${figures}${notes}</ul>${timeline}${output}</section>`;
}

export function htmlReport(results: BenchResults): string {
  const notes = results.notes.map((n) => `<li>${escape(n)}</li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>layerpool benchmarks ${escape(results.date.slice(0, 10))}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:860px;color:#1a202c;padding:0 1em}
svg{font:12px system-ui,sans-serif;display:block;margin:.5em 0}
svg .tick{font-size:10px;fill:#555}
section{border-top:1px solid #e2e8f0;margin-top:1.5em}
.note{color:#975a16}.failed{color:#c53030}.image{color:#4a5568}
pre{font-size:12px;overflow-x:auto;background:#f7fafc;padding:.5em}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #e2e8f0;padding:2px 6px;text-align:left}
</style></head><body>
<h1>layerpool benchmarks</h1>
<p><code>${escape(results.command)}</code> — ${escape(results.date)}<br>${escape(describeMachine(results.machine))}<br>
${results.runs} runs per scenario; page cache ${escape(results.pageCache)}; layerpool run from ${results.via}.</p>
${notes ? `<ul>${notes}</ul>` : ''}
<p>Bars are medians, whiskers min–max; the figure after a bar is the median and the median peak RSS.</p>
${results.scenarios.map(scenarioSection).join('\n')}
<section><h2>Derived figures</h2><pre>${escape(figuresTable(results))}</pre></section>
</body></html>
`;
}
