// The comparison with performance targets: how far a summary reaches each target (capped, so one
// figure far above its target cannot hide another below), an overall score, and whether all are met.
import { resolveTargets } from '../core/config.js';
import type { PerformanceSummary, PerformanceTargets, TargetComparison } from '../core/types.js';

/** Achievements above this count as this: 2× a target is as good as it gets in the score. */
const CAP = 2;

/** A summary against performance targets (by default DEFAULT_TARGETS). */
export function compareWithTargets(
  summary: PerformanceSummary,
  targets: PerformanceTargets = resolveTargets(),
): TargetComparison {
  const cap = (v: number) => (Number.isNaN(v) ? 0 : Math.min(v, CAP));
  const throughputAchievement = cap(summary.throughputRps / targets.targetRps);
  const latencyAchievement = Number.isNaN(summary.p95LatencyMs)
    ? 0
    : summary.p95LatencyMs <= 0
      ? CAP
      : cap(targets.targetP95LatencyMs / summary.p95LatencyMs);
  const memoryEfficiency = summary.memoryUsageMb <= 0 ? CAP : cap(targets.targetMemoryMb / summary.memoryUsageMb);
  const successRate = Number.isNaN(summary.successRate) ? 0 : summary.successRate;
  return {
    throughputAchievement,
    latencyAchievement,
    memoryEfficiency,
    successRate,
    overallScore: (throughputAchievement + latencyAchievement + memoryEfficiency + successRate) / 4,
    meetsTargets:
      summary.throughputRps >= targets.targetRps &&
      summary.p95LatencyMs <= targets.targetP95LatencyMs &&
      summary.memoryUsageMb <= targets.targetMemoryMb &&
      successRate >= targets.targetSuccessRate,
  };
}
