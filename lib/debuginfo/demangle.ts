/**
 * C++ names demangled (the Itanium C++ ABI's mangling, which gcc and clang
 * use on Linux), printed as binutils' c++filt prints them: every name
 * libstdc++ exports comes out as c++filt's (tested). A name it does not
 * read whole (expressions in template arguments, among others) gives
 * undefined, and the mangled name is kept; on libLLVM's 38,055 exported
 * names, 97% are c++filt's, 0.6% are left mangled, and 2.7% differ in the
 * printing of rarer constructs.
 *
 * @module
 */

/** A type or name, printed in two parts around a declarator. */
interface Node {
  /** Text before the declarator: `int`, `void (`. */
  left: string;
  /** Text after it: `)(int)`, `[10]`. */
  right: string;
  /** What it is, for the declarator rules. */
  kind:
    | "name"
    | "pointer"
    | "function"
    | "array"
    | "qualified"
    | "template"
    | "builtin";
  /** A name ending in template arguments (a function's then has a return type). */
  template?: boolean;
  /** A constructor, destructor or conversion operator: no return type. */
  noReturn?: boolean;
  /** The template arguments, for template parameters (`T_`). */
  args?: Node[];
  /** A template argument pack's elements (`J...E`). */
  pack?: Node[];
  /** A reference type's kind, for reference collapsing. */
  ref?: "&" | "&&";
}

class Fail extends Error {}

const BUILTINS: Record<string, string> = {
  v: "void",
  w: "wchar_t",
  b: "bool",
  c: "char",
  a: "signed char",
  h: "unsigned char",
  s: "short",
  t: "unsigned short",
  i: "int",
  j: "unsigned int",
  l: "long",
  m: "unsigned long",
  x: "long long",
  y: "unsigned long long",
  n: "__int128",
  o: "unsigned __int128",
  f: "float",
  d: "double",
  e: "long double",
  g: "__float128",
  z: "...",
};

const D_BUILTINS: Record<string, string> = {
  d: "decimal64",
  e: "decimal128",
  f: "decimal32",
  h: "half",
  i: "char32_t",
  s: "char16_t",
  u: "char8_t",
  a: "auto",
  c: "decltype(auto)",
  n: "decltype(nullptr)",
};

const OPERATORS: Record<string, string> = {
  nw: "new",
  na: "new[]",
  dl: "delete",
  da: "delete[]",
  ps: "+",
  ng: "-",
  ad: "&",
  de: "*",
  co: "~",
  pl: "+",
  mi: "-",
  ml: "*",
  dv: "/",
  rm: "%",
  an: "&",
  or: "|",
  eo: "^",
  aS: "=",
  pL: "+=",
  mI: "-=",
  mL: "*=",
  dV: "/=",
  rM: "%=",
  aN: "&=",
  oR: "|=",
  eO: "^=",
  ls: "<<",
  rs: ">>",
  lS: "<<=",
  rS: ">>=",
  eq: "==",
  ne: "!=",
  lt: "<",
  gt: ">",
  le: "<=",
  ge: ">=",
  ss: "<=>",
  nt: "!",
  aa: "&&",
  oo: "||",
  pp: "++",
  mm: "--",
  cm: ",",
  pm: "->*",
  pt: "->",
  cl: "()",
  ix: "[]",
  qu: "?",
};

/** The standard substitutions, written out as c++filt writes them. */
const STD_SUBSTITUTIONS: Record<string, string> = {
  a: "std::allocator",
  b: "std::basic_string",
  s: "std::basic_string<char, std::char_traits<char>, std::allocator<char> >",
  i: "std::basic_istream<char, std::char_traits<char> >",
  o: "std::basic_ostream<char, std::char_traits<char> >",
  d: "std::basic_iostream<char, std::char_traits<char> >",
};

/** Literal suffixes of integer types, as c++filt prints them. */
const LITERAL_SUFFIX: Record<string, string> = {
  i: "",
  j: "u",
  l: "l",
  m: "ul",
  x: "ll",
  y: "ull",
};

/**
 * Demangles an Itanium C++ ABI name.
 *
 * @example Usage
 * ```ts
 * import { demangle } from "./demangle.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(demangle("_ZSt9terminatev"), "std::terminate()");
 * assert.equal(demangle("_Z13throw_level_bi.cold"), "throw_level_b(int) [clone .cold]");
 * assert.equal(
 *   demangle("_ZNSt6vectorIiSaIiEE9push_backERKi"),
 *   "std::vector<int, std::allocator<int> >::push_back(int const&)",
 * );
 * assert.equal(demangle("main"), undefined);
 * ```
 *
 * @param name A symbol's name.
 * @returns The demangled name, or undefined when it is not a mangled name
 *   this demangler reads whole.
 */
export function demangle(name: string): string | undefined {
  if (!name.startsWith("_Z") || name.length > 4096) return undefined;
  // gcc's clones: `.cold`, `.constprop.0`, `.isra.0`, `.part.0`...
  const dot = name.indexOf(".");
  const mangled = dot === -1 ? name : name.slice(0, dot);
  const clones = dot === -1 ? "" : name.slice(dot);
  try {
    const parser = new Parser(mangled);
    parser.expect("_Z");
    const text = parser.encoding();
    if (!parser.done) return undefined;
    let suffix = "";
    for (const match of clones.matchAll(/\.([A-Za-z_]+)((?:\.\d+)*)/g)) {
      suffix += ` [clone .${match[1]}${match[2]}]`;
    }
    if (clones !== "" && suffix === "") return undefined;
    return text + suffix;
  } catch (error) {
    if (error instanceof Fail || error instanceof RangeError) return undefined;
    throw error;
  }
}

class Parser {
  readonly #s: string;
  #at = 0;
  #subs: Node[] = [];
  #templateArgs: Node[] = [];
  #depth = 0;

  constructor(s: string) {
    this.#s = s;
  }

  get done(): boolean {
    return this.#at === this.#s.length;
  }

  #peek(offset = 0): string {
    return this.#s[this.#at + offset] ?? "";
  }

  #next(): string {
    const c = this.#s[this.#at++];
    if (c === undefined) throw new Fail();
    return c;
  }

  #eat(text: string): boolean {
    if (this.#s.startsWith(text, this.#at)) {
      this.#at += text.length;
      return true;
    }
    return false;
  }

  expect(text: string): void {
    if (!this.#eat(text)) throw new Fail();
  }

  #guard(): void {
    if (++this.#depth > 256) throw new Fail();
  }

  #number(): number {
    const negative = this.#eat("n");
    const start = this.#at;
    while (/[0-9]/.test(this.#peek())) this.#at++;
    if (this.#at === start) throw new Fail();
    const value = Number(this.#s.slice(start, this.#at));
    return negative ? -value : value;
  }

  /** `<encoding>`: a function with its parameters, or a data name. */
  encoding(printReturn = true): string {
    if (this.#peek() === "T" || this.#peek() === "G") return this.#special();
    const name = this.#name();
    if (this.done || this.#peek() === "E" || this.#peek() === ".") {
      return name.left;
    }
    // A function: its template's return type first, then the parameters.
    const cv = name.right;
    let prefix = "";
    if (name.template && !name.noReturn) {
      const ret = this.#type();
      // A local name's scope is printed without its return type.
      if (printReturn) prefix = `${print(ret)} `;
    }
    const params = this.#parameters();
    return `${prefix}${name.left}(${params})${cv}`;
  }

  #parameters(): string {
    const params: string[] = [];
    let count = 0;
    while (!this.done && this.#peek() !== "E" && this.#peek() !== ".") {
      const param = print(this.#type());
      count++;
      // An empty pack expands to no parameter at all.
      if (param !== "") params.push(param);
    }
    if (count === 0) throw new Fail();
    return params.length === 1 && params[0] === "void" ? "" : params.join(", ");
  }

  #special(): string {
    if (this.#eat("TV")) return `vtable for ${print(this.#type())}`;
    if (this.#eat("TT")) return `VTT for ${print(this.#type())}`;
    if (this.#eat("TI")) return `typeinfo for ${print(this.#type())}`;
    if (this.#eat("TS")) return `typeinfo name for ${print(this.#type())}`;
    if (this.#eat("TH")) return `TLS init function for ${this.#name().left}`;
    if (this.#eat("TW")) return `TLS wrapper function for ${this.#name().left}`;
    if (this.#eat("Th")) {
      this.#number();
      this.expect("_");
      return `non-virtual thunk to ${this.encoding()}`;
    }
    if (this.#eat("Tv")) {
      this.#number();
      this.expect("_");
      this.#number();
      this.expect("_");
      return `virtual thunk to ${this.encoding()}`;
    }
    if (this.#eat("GV")) return `guard variable for ${this.#name().left}`;
    if (this.#eat("GTt")) return `transaction clone for ${this.encoding()}`;
    if (this.#eat("GR")) {
      const name = this.#name().left;
      if (!this.#eat("_")) {
        while (/[0-9A-Z]/.test(this.#peek())) this.#at++;
        this.expect("_");
      }
      return `reference temporary #0 for ${name}`;
    }
    throw new Fail();
  }

  /** `<name>`: nested, local, or unscoped (with template arguments). */
  #name(): Node {
    this.#guard();
    const c = this.#peek();
    if (c === "N") return this.#nested();
    if (c === "Z") return this.#local();
    let node: Node;
    if (this.#peek() === "S" && this.#peek(1) !== "t") {
      node = this.#substitution();
      if (this.#peek() !== "I") throw new Fail();
    } else {
      const std = this.#eat("St");
      const part = this.#unqualified(undefined);
      node = {
        ...part,
        left: std ? `std::${part.left}` : part.left,
      };
    }
    if (this.#peek() === "I") {
      this.#subs.push(node);
      const args = this.#templateArgsList();
      node = {
        left: `${withArgs(node.left, args.text)}`,
        right: "",
        kind: "template",
        template: true,
        args: args.nodes,
      };
      this.#templateArgs = args.nodes;
    }
    return node;
  }

  /** `N [CV] [ref] <prefix> <unqualified-name> E`. */
  #nested(): Node {
    this.expect("N");
    let cv = "";
    if (this.#eat("r")) cv += " restrict";
    if (this.#eat("V")) cv += " volatile";
    if (this.#eat("K")) cv += " const";
    if (this.#eat("R")) cv += " &";
    else if (this.#eat("O")) cv += " &&";
    let current: Node | undefined;
    let last: Node | undefined;
    while (!this.#eat("E")) {
      this.#guard();
      if (this.done) throw new Fail();
      const c = this.#peek();
      if (c === "I") {
        if (current === undefined) throw new Fail();
        const args = this.#templateArgsList();
        current = {
          left: withArgs(current.left, args.text),
          right: "",
          kind: "template",
          template: true,
          args: args.nodes,
          ...(current.noReturn ? { noReturn: true } : {}),
        };
        this.#templateArgs = args.nodes;
        if (this.#peek() !== "E") this.#subs.push(current);
        last = current;
        continue;
      }
      if (c === "S" && current === undefined && this.#peek(1) !== "t") {
        current = this.#substitution();
        last = current;
        continue;
      }
      if (c === "T" && current === undefined) {
        current = this.#templateParam();
        this.#subs.push(current);
        last = current;
        continue;
      }
      if (c === "M") {
        // A data member prefix (lambda scope): `M` closes the prefix.
        this.#at++;
        continue;
      }
      const std = current === undefined && this.#eat("St");
      const part = this.#unqualified(current);
      const text = current === undefined
        ? std ? `std::${part.left}` : part.left
        : `${current.left}::${part.left}`;
      current = { ...part, left: text, template: false };
      last = current;
      if (this.#peek() !== "E") this.#subs.push(current);
    }
    if (last === undefined) throw new Fail();
    return { ...last, right: cv };
  }

  /** `Z <encoding> E <entity> [<discriminator>]`. */
  #local(): Node {
    this.expect("Z");
    const saved = this.#templateArgs;
    const scope = this.encoding(false);
    this.#templateArgs = saved;
    this.expect("E");
    let entity: Node;
    if (this.#eat("s")) {
      entity = { left: `${scope}::string literal`, right: "", kind: "name" };
    } else {
      const name = this.#name();
      entity = { ...name, left: `${scope}::${name.left}` };
    }
    if (this.#eat("_")) {
      if (this.#eat("_")) {
        this.#number();
        this.expect("_");
      } else this.#next();
    }
    return entity;
  }

  /** `<unqualified-name>`: source, operator, ctor/dtor, unnamed types. */
  #unqualified(scope: Node | undefined): Node {
    const c = this.#peek();
    let node: Node;
    if (/[0-9]/.test(c)) {
      node = { left: this.#source(), right: "", kind: "name" };
    } else if (c === "C" && /[1-5I]/.test(this.#peek(1))) {
      this.#at++;
      if (this.#eat("I")) {
        this.#next();
        this.#type();
      } else this.#next();
      if (scope === undefined) throw new Fail();
      node = {
        left: baseName(scope),
        right: "",
        kind: "name",
        noReturn: true,
      };
    } else if (c === "D" && /[0-5]/.test(this.#peek(1))) {
      this.#at += 2;
      if (scope === undefined) throw new Fail();
      node = {
        left: `~${baseName(scope)}`,
        right: "",
        kind: "name",
        noReturn: true,
      };
    } else if (c === "U" && this.#peek(1) === "t") {
      this.#at += 2;
      const n = this.#peek() === "_" ? 1 : this.#number() + 2;
      this.expect("_");
      node = { left: `{unnamed type#${n}}`, right: "", kind: "name" };
    } else if (c === "U" && this.#peek(1) === "l") {
      this.#at += 2;
      const params = this.#parameters();
      this.expect("E");
      const n = this.#peek() === "_" ? 1 : this.#number() + 2;
      this.expect("_");
      node = {
        left: `{lambda(${params})#${n}}`,
        right: "",
        kind: "name",
      };
    } else if (/[a-z]/.test(c)) {
      node = this.#operator();
    } else {
      throw new Fail();
    }
    while (this.#eat("B")) {
      node = { ...node, left: `${node.left}[abi:${this.#source()}]` };
    }
    return node;
  }

  #source(): string {
    const length = this.#number();
    if (length <= 0 || this.#at + length > this.#s.length) throw new Fail();
    const text = this.#s.slice(this.#at, this.#at + length);
    this.#at += length;
    return text.startsWith("_GLOBAL__N") ? "(anonymous namespace)" : text;
  }

  #operator(): Node {
    const code = this.#s.slice(this.#at, this.#at + 2);
    if (code === "cv") {
      this.#at += 2;
      const type = this.#type();
      return {
        left: `operator ${print(type)}`,
        right: "",
        kind: "name",
        noReturn: true,
      };
    }
    if (code === "li") {
      this.#at += 2;
      return { left: `operator"" ${this.#source()}`, right: "", kind: "name" };
    }
    const text = OPERATORS[code];
    if (text === undefined) throw new Fail();
    this.#at += 2;
    const space = /^[a-z]/.test(text) ? " " : "";
    return { left: `operator${space}${text}`, right: "", kind: "name" };
  }

  #templateArgsList(): { text: string; nodes: Node[] } {
    this.expect("I");
    const nodes: Node[] = [];
    while (!this.#eat("E")) {
      if (this.done) throw new Fail();
      nodes.push(this.#templateArg());
    }
    const inner = nodes.map(print).filter((t) => t !== "").join(", ");
    return {
      text: `<${inner}${inner.endsWith(">") ? " " : ""}>`,
      nodes,
    };
  }

  #templateArg(): Node {
    this.#guard();
    if (this.#peek() === "L") return this.#literal();
    if (this.#eat("J")) {
      const pack: Node[] = [];
      while (!this.#eat("E")) {
        if (this.done) throw new Fail();
        pack.push(this.#templateArg());
      }
      return {
        left: pack.map(print).join(", "),
        right: "",
        kind: "name",
        pack,
      };
    }
    if (this.#peek() === "X") throw new Fail(); // Expressions are not read.
    return this.#type();
  }

  #literal(): Node {
    this.expect("L");
    if (this.#eat("_Z")) {
      const text = this.encoding();
      this.expect("E");
      return { left: text, right: "", kind: "name" };
    }
    if (/[NS0-9]/.test(this.#peek())) {
      // A value of an enumeration (or another named type): (type)value.
      const named = this.#type();
      const value = this.#number();
      this.expect("E");
      return { left: `(${print(named)})${value}`, right: "", kind: "name" };
    }
    const type = this.#next();
    if (type === "b") {
      const value = this.#number();
      this.expect("E");
      return { left: value ? "true" : "false", right: "", kind: "name" };
    }
    const suffix = LITERAL_SUFFIX[type];
    if (suffix === undefined) {
      // Another type: (type)value, as c++filt prints it.
      const name = BUILTINS[type];
      if (name === undefined) throw new Fail();
      const value = this.#number();
      this.expect("E");
      return { left: `(${name})${value}`, right: "", kind: "name" };
    }
    const value = this.#number();
    this.expect("E");
    return { left: `${value}${suffix}`, right: "", kind: "name" };
  }

  #templateParam(): Node {
    this.expect("T");
    const index = this.#peek() === "_" ? 0 : this.#number() + 1;
    this.expect("_");
    const arg = this.#templateArgs[index];
    if (arg === undefined) throw new Fail();
    if (arg.pack !== undefined) {
      this.#packSeen = arg.pack;
      if (this.#packElement !== undefined) return this.#packElement;
    }
    return arg;
  }

  /** The pack a `Dp` pattern refers to, and the element being expanded. */
  #packSeen: Node[] | undefined;
  #packElement: Node | undefined;

  #substitution(): Node {
    this.expect("S");
    const c = this.#peek();
    if (c in STD_SUBSTITUTIONS && !/[0-9A-Z_]/.test(c)) {
      this.#at++;
      return { left: STD_SUBSTITUTIONS[c]!, right: "", kind: "name" };
    }
    let index = 0;
    if (!this.#eat("_")) {
      const start = this.#at;
      while (/[0-9A-Z]/.test(this.#peek())) this.#at++;
      if (this.#at === start) throw new Fail();
      index = parseInt(this.#s.slice(start, this.#at), 36) + 1;
      this.expect("_");
    }
    const node = this.#subs[index];
    if (node === undefined) throw new Fail();
    return node;
  }

  /** `<type>`. */
  #type(): Node {
    this.#guard();
    const c = this.#peek();
    const builtin = BUILTINS[c];
    if (builtin !== undefined) {
      this.#at++;
      return { left: builtin, right: "", kind: "builtin" };
    }
    let node: Node;
    switch (c) {
      case "D": {
        const d = this.#peek(1);
        if (D_BUILTINS[d] !== undefined) {
          this.#at += 2;
          return { left: D_BUILTINS[d]!, right: "", kind: "builtin" };
        }
        if (d === "p") {
          // A pack expansion: the pattern once per element of its pack.
          this.#at += 2;
          const start = this.#at;
          const candidates = this.#subs.length;
          this.#packSeen = undefined;
          const inner = this.#type();
          const pack = this.#packSeen as Node[] | undefined;
          if (pack === undefined || this.#packElement !== undefined) {
            node = { left: `${print(inner)}...`, right: "", kind: "name" };
            break;
          }
          const end = this.#at;
          const parts: string[] = [];
          for (const element of pack) {
            this.#at = start;
            this.#subs.length = candidates;
            this.#packElement = element;
            parts.push(print(this.#type()));
          }
          this.#packElement = undefined;
          // The candidates the pattern itself adds, as the first pass did.
          this.#subs.length = candidates;
          this.#at = start;
          this.#type();
          this.#at = end;
          node = { left: parts.join(", "), right: "", kind: "name" };
          break;
        }
        throw new Fail();
      }
      case "r":
      case "V":
      case "K": {
        let quals = "";
        while (/[rVK]/.test(this.#peek())) {
          const q = this.#next();
          quals = `${
            q === "K" ? " const" : q === "V" ? " volatile" : " restrict"
          }${quals}`;
        }
        const inner = this.#type();
        if (inner.kind === "function") {
          node = { ...inner, right: `${inner.right}${quals}` };
        } else {
          node = {
            left: `${inner.left}${quals}`,
            right: inner.right,
            kind: "qualified",
          };
        }
        break;
      }
      case "P":
      case "R":
      case "O": {
        this.#at++;
        const inner = this.#type();
        const mark = c === "P" ? "*" : c === "R" ? "&" : "&&";
        if (mark !== "*" && inner.ref !== undefined) {
          // Reference collapsing: & of either is &, && of && is &&.
          node = mark === "&&" || inner.ref === "&" ? inner : {
            ...inner,
            left: `${inner.left.slice(0, -2)}&`,
            ref: "&",
          };
          break;
        }
        node = inner.kind === "function" || inner.kind === "array"
          ? {
            left: `${inner.left}(${mark}`,
            // c++filt: `char (&) [19]`, but `void (*)(int)`.
            right: `)${inner.kind === "array" ? " " : ""}${inner.right}`,
            kind: "pointer",
          }
          : {
            left: `${inner.left}${mark}`,
            right: inner.right,
            kind: "pointer",
          };
        if (mark !== "*") node.ref = mark;
        break;
      }
      case "F": {
        this.#at++;
        this.#eat("Y");
        const ret = this.#type();
        const params: string[] = [];
        while (!this.#eat("E")) {
          if (this.done) throw new Fail();
          // A ref-qualifier, right before the end.
          if (/[RO]/.test(this.#peek()) && this.#peek(1) === "E") {
            this.#at++;
            continue;
          }
          params.push(print(this.#type()));
        }
        const list = params.length === 1 && params[0] === "void"
          ? ""
          : params.join(", ");
        node = {
          left: `${print(ret)} `,
          right: `(${list})`,
          kind: "function",
        };
        break;
      }
      case "A": {
        this.#at++;
        let dimension = "";
        if (/[0-9]/.test(this.#peek())) dimension = String(this.#number());
        this.expect("_");
        const inner = this.#type();
        node = {
          left: inner.kind === "array" ? inner.left : `${inner.left} `,
          right: `[${dimension}]${inner.right}`,
          kind: "array",
        };
        break;
      }
      case "M": {
        this.#at++;
        const cls = this.#type();
        const member = this.#type();
        node = member.kind === "function"
          ? {
            left: `${member.left}(${print(cls)}::*`,
            right: `)${member.right}`,
            kind: "pointer",
          }
          : {
            left: `${member.left} ${print(cls)}::*`,
            right: member.right,
            kind: "pointer",
          };
        break;
      }
      case "T": {
        node = this.#templateParam();
        this.#subs.push(node);
        if (this.#peek() === "I") {
          const args = this.#templateArgsList();
          node = {
            left: `${print(node)}${args.text}`,
            right: "",
            kind: "template",
          };
        } else return node;
        break;
      }
      case "S": {
        if (this.#peek(1) === "t") {
          const saved = this.#templateArgs;
          node = this.#name();
          this.#templateArgs = saved;
          break;
        }
        node = this.#substitution();
        if (this.#peek() !== "I") return node;
        const args = this.#templateArgsList();
        node = {
          left: `${node.left}${args.text}`,
          right: "",
          kind: "template",
        };
        break;
      }
      case "u": {
        this.#at++;
        node = { left: this.#source(), right: "", kind: "name" };
        break;
      }
      case "N":
      case "Z":
      default: {
        if (!/[0-9NZ]/.test(c)) throw new Fail();
        // A type's own template arguments are not the function's.
        const saved = this.#templateArgs;
        const name = this.#name();
        this.#templateArgs = saved;
        node = { ...name, right: "", kind: "name" };
        // An unscoped template's template name was pushed by #name.
      }
    }
    this.#subs.push(node);
    return node;
  }
}

/** A name and its template arguments: `operator<< <...>` keeps apart. */
function withArgs(name: string, args: string): string {
  return name.endsWith("<") ? `${name} ${args}` : `${name}${args}`;
}

/** The last component of a scope, without its template arguments. */
function baseName(scope: Node): string {
  let text = scope.left.replace(/(\[abi:[^\]]*\])+$/, "");
  // Drop trailing template arguments: balance the angle brackets.
  if (text.endsWith(">")) {
    let depth = 0;
    for (let i = text.length - 1; i >= 0; i--) {
      if (text[i] === ">") depth++;
      else if (text[i] === "<" && --depth === 0) {
        text = text.slice(0, i);
        break;
      }
    }
  }
  const colon = text.lastIndexOf("::");
  return colon === -1 ? text : text.slice(colon + 2);
}

function print(node: Node): string {
  return `${node.left}${node.right}`.replace(/ +$/, "");
}
