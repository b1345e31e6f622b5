// The worker's Temporal SDK metrics (TEMPORAL_METRICS_ADDRESS: Prometheus text format), read by name.

export type Metrics = { name: string; value: number }[];

export async function scrapeMetrics(url: string): Promise<Metrics> {
  const text = await (await fetch(url)).text();
  const metrics: Metrics = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match?.[1] && match[3]) metrics.push({ name: match[1], value: Number(match[3]) });
  }
  return metrics;
}

/** The sum over every label set of the metrics whose name matches. */
export const metricSum = (metrics: Metrics, name: RegExp) =>
  metrics.filter((m) => name.test(m.name)).reduce((sum, m) => sum + m.value, 0);
