import { RE2JS } from 're2js';

/**
 * Patterns in SMI are RE2 (what Envoy's `safe_regex` runs). JavaScript's
 * RegExp accepts things RE2 rejects (lookaround, backreferences) and the
 * reverse, so validation uses an RE2 engine.
 */
export function re2Error(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * SMI's `pathRegex` is anchored at the start of the path only ("anchored to
 * the beginning of the URI"): `/books` matches `/books` and `/books/1`.
 * Envoy's safe_regex must match the whole path, so the pattern becomes
 * `(?:pattern).*`. An absent pattern matches every path.
 */
export function anchoredPathRegex(pattern: string | undefined): string {
  return pattern === undefined || pattern === '' ? '.*' : `(?:${pattern}).*`;
}

/** Whole-string RE2 match, the way Envoy evaluates safe_regex. */
export function fullMatch(pattern: string, text: string): boolean {
  return RE2JS.compile(pattern).matches(text);
}
