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

/** RE2-escapes a literal (method names are tokens, but a token may hold `.` or `+`). */
export function escapeRe2(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, (c) => `\\${c}`);
}

/** The `:method` header pattern of a list of methods. */
export const methodsRegex = (methods: readonly string[]): string => methods.map(escapeRe2).join('|');

/** Whole-string RE2 match, the way Envoy evaluates safe_regex. */
export function fullMatch(pattern: string, text: string): boolean {
  return RE2JS.compile(pattern).matches(text);
}

/**
 * Envoy refuses a safe_regex whose RE2 program is larger than a limit (100
 * by default). Every bootstrap smc writes raises the limit to this value
 * through Envoy's runtime (`re2.max_program_size.error_level`), and the
 * compiler refuses any pattern whose program could be larger, so whatever the
 * compiler accepts, the Envoy that smc configures accepts too.
 */
export const RE2_MAX_PROGRAM_SIZE = 2000;

/** re2js's program instructions, as far as the size bound needs them. */
interface Re2jsInst {
  readonly op: number;
  readonly arg: number;
  readonly runes: ArrayLike<number>;
}
// Opcodes of re2js's Inst (RUNE, RUNE1, RUNE_ANY, RUNE_ANY_NOT_NL); the flag bit of case folding.
const RUNE = 8;
const RUNE1 = 9;
const RUNE_ANY = 10;
const RUNE_ANY_NOT_NL = 11;
const FOLD_CASE = 1;
/** RE2 adds an unanchored-search prefix and a few bookkeeping instructions. */
const PROGRAM_OVERHEAD = 8;

/**
 * An upper bound of the program size RE2 (C++, UTF-8 mode, as in Envoy)
 * gives `pattern`. re2js compiles the same program shape but matches whole
 * code points, where RE2 matches UTF-8 bytes: each character class becomes a
 * small byte automaton there. So every instruction counts one, and each
 * character class counts what its UTF-8 byte automaton can cost at most.
 * Undefined when the pattern does not compile.
 */
export function re2ProgramSizeBound(pattern: string): number | undefined {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(pattern);
  } catch {
    return undefined;
  }
  const insts = (compiled as unknown as { re2Input?: { prog?: { inst?: unknown } } }).re2Input?.prog?.inst;
  // Without the program (a future re2js), assume the dearest class everywhere.
  if (!Array.isArray(insts)) return compiled.programSize() * rangeCost(0, 0x10ffff) + PROGRAM_OVERHEAD;
  let size = PROGRAM_OVERHEAD;
  for (const inst of insts as Re2jsInst[]) size += instCost(inst);
  return size;
}

function instCost(inst: Re2jsInst): number {
  const fold = (inst.arg & FOLD_CASE) !== 0 ? 2 : 1;
  switch (inst.op) {
    case RUNE_ANY:
      return rangeCost(0, 0x10ffff);
    case RUNE_ANY_NOT_NL:
      return rangeCost(0, 0x10ffff) + rangeCost(0, 0x7f) + 1;
    case RUNE1:
      return fold * (utf8Length(inst.runes[0] ?? 0) + 1);
    case RUNE: {
      if (inst.runes.length === 1) return fold * (utf8Length(inst.runes[0]!) + 1);
      let cost = 0;
      for (let i = 0; i + 1 < inst.runes.length; i += 2) cost += rangeCost(inst.runes[i]!, inst.runes[i + 1]!) + 1;
      return fold * cost;
    }
    default:
      return 1;
  }
}

const ANY_NON_ASCII_COST = 12;
const utf8Length = (r: number) => (r < 0x80 ? 1 : r < 0x800 ? 2 : r < 0x10000 ? 3 : 4);

/**
 * The most instructions a code point range can take as UTF-8 bytes: split at
 * the encoding-length boundaries, a range of n-byte sequences needs at most
 * 2n-1 byte sequences of n byte ranges each, joined by alternations.
 */
function rangeCost(lo: number, hi: number): number {
  // RE2 compiles 80-10FFFF (what `.` and negated classes hold) as one fixed
  // automaton of six byte ranges and their alternations.
  if (lo <= 0x80 && hi >= 0x10ffff) return (lo < 0x80 ? rangeCost(lo, 0x7f) : 0) + ANY_NON_ASCII_COST;
  let cost = 0;
  for (const [a, b] of [[0, 0x7f], [0x80, 0x7ff], [0x800, 0xffff], [0x10000, 0x10ffff]] as const) {
    if (hi < a || lo > b) continue;
    const n = utf8Length(a);
    cost += n * (2 * n - 1) + (2 * n - 1);
  }
  return cost;
}
