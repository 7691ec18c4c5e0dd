// Types of model.js (plain JavaScript, because the browser loads it as is), for
// the node tests that import it. Keep in step with model.js.
import type { GatewayEvent, RouteStatus, SiteStatus, StatusDocument } from '../admin-control.js';
import type { TrafficSnapshot } from '../console-traffic.js';

export type Tone = 'ok' | 'warn' | 'act' | 'bad' | 'info';

export interface Described {
  readonly words: string;
  readonly tone: Tone;
  readonly symbol: string;
}

export function describeRoute(route: RouteStatus): Described & { readonly detail: string };
export function rampPercent(route: Pick<RouteStatus, 'weights' | 'active'>): number | undefined;
export function routeNotes(route: RouteStatus): string[];
export function routeActions(route: RouteStatus): {
  pin: boolean;
  unpin: boolean;
  approveFailback: boolean;
  forceFailback: boolean;
  approveFailover: boolean;
};
export function describeSite(site: Pick<SiteStatus, 'health'>): Described;

export interface BuildingView extends Described {
  readonly name: string;
  readonly sites: SiteStatus[];
  readonly drained: boolean;
}
export function groupBuildings(sites: readonly SiteStatus[]): BuildingView[];
export function drainedSince(kind: 'site' | 'building', name: string, events: readonly GatewayEvent[]): string | undefined;
export function newestFirst<T>(events: readonly T[], limit?: number): T[];

/** A status document, possibly from a newer gateway with `audit` and replica fields. */
export type StatusLike = Omit<Partial<StatusDocument>, 'audit' | 'replica' | 'leader' | 'replicas'> & {
  readonly audit?: unknown;
  readonly replica?: unknown;
  readonly leader?: unknown;
  readonly replicas?: unknown;
};
export function auditTrail(doc: StatusLike, limit?: number): { time: string; text: string }[];
export function describeAuditEntry(entry: unknown): string;
export function describeFields(record: unknown): string;
export function describeReplicas(doc: StatusLike): string[];
export function describeStore(store: StatusDocument['stateStore'] | undefined): { words: string; tone: Tone };
export function formatAge(iso: string, nowMs: number): string;
export function formatClock(iso: string): string;
export function refusalText(status: number, bodyText: string): string;

export interface TrafficPoint {
  readonly timeMs: number;
  readonly requestsPerSecond: number;
  readonly errorsPerSecond: number;
}
export interface TrafficHistory {
  readonly windowMs: number;
  add(snapshot: TrafficSnapshot): boolean;
  routes(): string[];
  series(route: string): TrafficPoint[];
}
export function createTrafficHistory(windowMs?: number): TrafficHistory;
export function formatRate(perSecond: number, unit?: string): string;
export function formatErrorShare(point: TrafficPoint): string;
export function chartPoints(
  points: readonly TrafficPoint[],
  key: 'requestsPerSecond' | 'errorsPerSecond',
  opts: { width: number; height: number; endMs: number; windowMs: number; maxValue: number },
): string;
