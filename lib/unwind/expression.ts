/**
 * DWARF expressions, as call frame information uses them (`DW_CFA_expression`,
 * `DW_CFA_def_cfa_expression`): a stack machine over target-sized values,
 * bounded in steps and depth.
 *
 * @module
 */

import { ByteReader } from "../elf/mod.ts";
import { Cursor } from "./_cursor.ts";

/** What an expression may read: registers and the process's memory. */
export interface ExpressionContext {
  /** A register's value by DWARF number; undefined when not known. */
  register(number: number): bigint | undefined;
  /** `size` bytes of memory at `address`, as a number; undefined when not kept. */
  read(address: bigint, size: number): bigint | undefined;
}

/** Options for {@linkcode evaluateExpression}. */
export interface EvaluateOptions {
  /** True for 64-bit targets. */
  is64: boolean;
  /** Byte order of the expression's constants. */
  littleEndian: boolean;
  /**
   * Values on the stack before the first operation (the CFA, for a
   * register's `DW_CFA_expression`).
   *
   * @default {[]}
   */
  initial?: bigint[];
  /**
   * Operations evaluated at most, branches included.
   *
   * @default {1000}
   */
  maxSteps?: number;
}

/** Deepest stack an expression may build. */
const MAX_DEPTH = 64;

/**
 * Evaluates a DWARF expression and returns the value on top of its stack.
 *
 * @example A PLT entry's CFA on x86_64: rsp + 8, plus 8 more past the push
 * ```ts
 * import { evaluateExpression } from "./expression.ts";
 * import assert from "node:assert/strict";
 *
 * // DW_OP_breg7 (rsp) 8; DW_OP_breg16 (rip) 0; DW_OP_lit15; DW_OP_and;
 * // DW_OP_lit11; DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus
 * const plt = new Uint8Array([0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22]);
 * const at = (rip: bigint) =>
 *   evaluateExpression(plt, {
 *     register: (n) => n === 7 ? 0x7ffe0000n : n === 16 ? rip : undefined,
 *     read: () => undefined,
 *   }, { is64: true, littleEndian: true });
 * assert.equal(at(0x1020n), 0x7ffe0008n);
 * assert.equal(at(0x102bn), 0x7ffe0010n);
 * ```
 *
 * @example A signal frame's CFA: the stack pointer saved in the frame
 * ```ts
 * import { evaluateExpression } from "./expression.ts";
 * import assert from "node:assert/strict";
 *
 * // DW_OP_breg7 (rsp) 160; DW_OP_deref
 * const value = evaluateExpression(new Uint8Array([0x77, 0xa0, 0x01, 0x06]), {
 *   register: () => 0x1000n,
 *   read: (address, size) => address === 0x10a0n && size === 8 ? 0x2000n : undefined,
 * }, { is64: true, littleEndian: true });
 * assert.equal(value, 0x2000n);
 * ```
 *
 * @param bytes The expression.
 * @param context The registers and memory it reads.
 * @param options The target's word size and byte order, the initial stack.
 * @returns The value on top of the stack when the expression ends.
 * @throws {CfiFormatError} When an operation is unknown, the stack under-
 *   or overflows, a register or memory it reads is not known, or it runs
 *   past the step limit.
 */
export function evaluateExpression(
  bytes: Uint8Array,
  context: ExpressionContext,
  options: EvaluateOptions,
): bigint {
  const { is64, littleEndian } = options;
  const bits = is64 ? 64 : 32;
  const wrap = (value: bigint) => BigInt.asUintN(bits, value);
  const signed = (value: bigint) => BigInt.asIntN(bits, value);
  const c = new Cursor(
    new ByteReader(bytes, { is64, littleEndian }),
    0n,
    "a DWARF expression",
  );
  const stack = (options.initial ?? []).map(wrap);
  const maxSteps = options.maxSteps ?? 1000;
  const fail = (message: string) => c.error(message);
  const pop = (): bigint => {
    const value = stack.pop();
    if (value === undefined) {
      throw fail("expected a value on the stack, found it empty");
    }
    return value;
  };
  const push = (value: bigint) => {
    if (stack.length >= MAX_DEPTH) {
      throw fail(
        `expected at most ${MAX_DEPTH} values on the stack, found more`,
      );
    }
    stack.push(wrap(value));
  };
  const register = (number: number) => {
    const value = context.register(number);
    if (value === undefined) throw fail(`register ${number} is not known`);
    return value;
  };
  const read = (address: bigint, size: number) => {
    const value = context.read(address, size);
    if (value === undefined) {
      throw fail(
        `${size} bytes at 0x${
          address.toString(16)
        } are not in the core's kept memory`,
      );
    }
    return value;
  };
  const binary = (f: (a: bigint, b: bigint) => bigint) => {
    const b = pop();
    const a = pop();
    push(f(a, b));
  };
  const compare = (f: (a: bigint, b: bigint) => boolean) =>
    binary((a, b) => f(signed(a), signed(b)) ? 1n : 0n);
  for (let steps = 0; !c.done; steps++) {
    if (steps >= maxSteps) {
      throw fail(
        `expected at most ${maxSteps} operations, found more (a loop?)`,
      );
    }
    const op = c.u8("operation");
    if (op >= 0x30 && op <= 0x4f) {
      push(BigInt(op - 0x30)); // DW_OP_lit0..31
      continue;
    }
    if (op >= 0x70 && op <= 0x8f) {
      push(register(op - 0x70) + c.sleb("DW_OP_breg offset"));
      continue;
    }
    if (op >= 0x50 && op <= 0x6f) {
      push(register(op - 0x50)); // DW_OP_reg*: the register's value, as a location
      continue;
    }
    switch (op) {
      case 0x03: // DW_OP_addr
        push(c.word("DW_OP_addr"));
        break;
      case 0x06: // DW_OP_deref
        push(read(pop(), is64 ? 8 : 4));
        break;
      case 0x08:
        push(BigInt(c.u8("DW_OP_const1u")));
        break;
      case 0x09:
        push(BigInt(c.u8("DW_OP_const1s") << 24 >> 24));
        break;
      case 0x0a:
        push(BigInt(c.u16("DW_OP_const2u")));
        break;
      case 0x0b:
        push(BigInt(c.u16("DW_OP_const2s") << 16 >> 16));
        break;
      case 0x0c:
        push(BigInt(c.u32("DW_OP_const4u")));
        break;
      case 0x0d:
        push(BigInt(c.u32("DW_OP_const4s") | 0));
        break;
      case 0x0e:
        push(c.u64("DW_OP_const8u"));
        break;
      case 0x0f:
        push(BigInt.asIntN(64, c.u64("DW_OP_const8s")));
        break;
      case 0x10:
        push(c.uleb("DW_OP_constu"));
        break;
      case 0x11:
        push(c.sleb("DW_OP_consts"));
        break;
      case 0x12: { // DW_OP_dup
        const value = pop();
        push(value);
        push(value);
        break;
      }
      case 0x13: // DW_OP_drop
        pop();
        break;
      case 0x14: { // DW_OP_over
        const b = pop();
        const a = pop();
        push(a);
        push(b);
        push(a);
        break;
      }
      case 0x15: { // DW_OP_pick
        const index = c.u8("DW_OP_pick index");
        const value = stack[stack.length - 1 - index];
        if (value === undefined) {
          throw fail(
            `DW_OP_pick ${index}: expected that many values on the stack, found ${stack.length}`,
          );
        }
        push(value);
        break;
      }
      case 0x16: { // DW_OP_swap
        const b = pop();
        const a = pop();
        push(b);
        push(a);
        break;
      }
      case 0x17: { // DW_OP_rot
        const c1 = pop();
        const b = pop();
        const a = pop();
        push(c1);
        push(a);
        push(b);
        break;
      }
      case 0x19: { // DW_OP_abs
        const value = signed(pop());
        push(value < 0n ? -value : value);
        break;
      }
      case 0x1a:
        binary((a, b) => a & b);
        break;
      case 0x1b: // DW_OP_div (signed)
        binary((a, b) => {
          if (b === 0n) throw fail("DW_OP_div by zero");
          return signed(a) / signed(b);
        });
        break;
      case 0x1c:
        binary((a, b) => a - b);
        break;
      case 0x1d: // DW_OP_mod
        binary((a, b) => {
          if (b === 0n) throw fail("DW_OP_mod by zero");
          return a % b;
        });
        break;
      case 0x1e:
        binary((a, b) => a * b);
        break;
      case 0x1f:
        push(-pop());
        break;
      case 0x20:
        push(~pop());
        break;
      case 0x21:
        binary((a, b) => a | b);
        break;
      case 0x22:
        binary((a, b) => a + b);
        break;
      case 0x23: // DW_OP_plus_uconst
        push(pop() + c.uleb("DW_OP_plus_uconst"));
        break;
      case 0x24:
        binary((a, b) => b >= BigInt(bits) ? 0n : a << b);
        break;
      case 0x25:
        binary((a, b) => b >= BigInt(bits) ? 0n : a >> b);
        break;
      case 0x26:
        binary((a, b) =>
          signed(a) >> (b >= BigInt(bits) ? BigInt(bits - 1) : b)
        );
        break;
      case 0x27:
        binary((a, b) => a ^ b);
        break;
      case 0x28: { // DW_OP_bra
        const offset = c.u16("DW_OP_bra offset") << 16 >> 16;
        if (pop() !== 0n) jump(offset);
        break;
      }
      case 0x29:
        compare((a, b) => a === b);
        break;
      case 0x2a:
        compare((a, b) => a >= b);
        break;
      case 0x2b:
        compare((a, b) => a > b);
        break;
      case 0x2c:
        compare((a, b) => a <= b);
        break;
      case 0x2d:
        compare((a, b) => a < b);
        break;
      case 0x2e:
        compare((a, b) => a !== b);
        break;
      case 0x2f: // DW_OP_skip
        jump(c.u16("DW_OP_skip offset") << 16 >> 16);
        break;
      case 0x90: // DW_OP_regx
        push(register(c.ulebNumber("DW_OP_regx register")));
        break;
      case 0x92: { // DW_OP_bregx
        const number = c.ulebNumber("DW_OP_bregx register");
        push(register(number) + c.sleb("DW_OP_bregx offset"));
        break;
      }
      case 0x94: { // DW_OP_deref_size
        const size = c.u8("DW_OP_deref_size size");
        if (size < 1 || size > (is64 ? 8 : 4)) {
          throw fail(
            `DW_OP_deref_size: expected 1 to ${
              is64 ? 8 : 4
            } bytes, found ${size}`,
          );
        }
        push(read(pop(), size));
        break;
      }
      case 0x96: // DW_OP_nop
        break;
      default:
        throw fail(
          `expected a DWARF operation this unwinder knows, found 0x${
            op.toString(16)
          }`,
        );
    }
  }
  const top = stack.pop();
  if (top === undefined) {
    throw fail("expected a value on the stack at the end, found none");
  }
  return top;

  function jump(offset: number): void {
    const target = c.at + offset;
    if (target < 0 || target > c.length) {
      throw fail(
        `a branch to ${target}, outside the expression's ${c.length} bytes`,
      );
    }
    c.at = target;
  }
}
