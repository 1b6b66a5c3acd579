// The naming rules every part shares (routing keys, Kubernetes names, workloads, hosts), each as a RegExp and a JSON-Schema pattern from one source.

/** Longest routing key: it travels in every request's baggage, so keep it short. */
export const MAX_KEY_LENGTH = 64;

/**
 * What a routing key may contain: RFC 3986 §2.3 unreserved characters. A W3C baggage value is
 * percent-decoded by every reader (W3C Baggage §3.3.1.3; the sidecar and OpenTelemetry alike), so a key
 * with `%` in it would name a different key once decoded (`k%41` → `kA`); unreserved characters are
 * never encoded, so what the API stores is exactly what travels and what every hop reads.
 */
export const ROUTING_KEY_PATTERN = '^[A-Za-z0-9._~-]{1,64}$';
/** The same rule in words, for error messages, the CLI and the docs. */
export const ROUTING_KEY_RULE = '1-64 characters from A-Z a-z 0-9 - . _ ~ (sent as is in baggage, never percent-encoded)';
/** RFC 9110 §5.6.2 token: what a baggage member *name* may be (W3C Baggage §3.3.1.2), e.g. `--routing-key-name`. */
export const BAGGAGE_KEY_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$";
/** An HTTP field name (RFC 9110 §5.1: a token), up to 128 characters. */
export const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$";
/** DNS-1123 label (Kubernetes names, sandbox names). */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';
/** `<namespace>/<name>`, both DNS-1123 labels. */
export const WORKLOAD_PATTERN = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';
/** A DNS name (RFC 1123), up to 253 characters, optionally fully qualified. */
export const HOSTNAME_PATTERN = '^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*\\.?$';
/** A bracketed IPv6 literal as written in `host:port`. */
export const BRACKETED_IPV6_PATTERN = '^\\[[0-9A-Fa-f:.]+\\]$';

export const ROUTING_KEY_RE = new RegExp(ROUTING_KEY_PATTERN);
export const BAGGAGE_KEY_NAME_RE = new RegExp(BAGGAGE_KEY_NAME_PATTERN);
export const DNS_LABEL_RE = new RegExp(DNS_LABEL_PATTERN);
export const HEADER_NAME_RE = new RegExp(HEADER_NAME_PATTERN);
export const WORKLOAD_RE = new RegExp(WORKLOAD_PATTERN);
export const HOSTNAME_RE = new RegExp(HOSTNAME_PATTERN);
export const BRACKETED_IPV6_RE = new RegExp(BRACKETED_IPV6_PATTERN);

export function isRoutingKey(value: unknown): value is string {
  return typeof value === 'string' && ROUTING_KEY_RE.test(value);
}
export function isBaggageKeyName(value: unknown): value is string {
  return typeof value === 'string' && BAGGAGE_KEY_NAME_RE.test(value);
}
export function isDnsLabel(value: unknown): value is string {
  return typeof value === 'string' && DNS_LABEL_RE.test(value);
}
export function isWorkloadName(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 127 && WORKLOAD_RE.test(value);
}
